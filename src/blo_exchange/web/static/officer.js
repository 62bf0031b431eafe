// The officer's form: show the chosen kind's fields, narrow code lists to the chosen scheme,
// send the browser's UTC offset with local times, add item rows, and refresh delivery states.
"use strict";
(function () {
  function byId(id) { return document.getElementById(id); }

  function showKind(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    var kind = checked ? checked.value : "seizure";
    form.querySelectorAll(".kind-part").forEach(function (part) {
      var active = part.dataset.kind === kind;
      part.hidden = !active;
      part.disabled = !active;  // a disabled fieldset's fields are not sent
    });
  }

  function narrowCodes(select) {
    var scheme = byId(select.dataset.schemeOf);
    function apply() {
      select.querySelectorAll("optgroup").forEach(function (group) {
        var on = group.dataset.scheme === scheme.value;
        group.hidden = !on;
        group.disabled = !on;
      });
      var chosen = select.selectedOptions[0];
      if (chosen && chosen.parentElement.disabled) select.value = "";
      select.disabled = !scheme.value || scheme.value === "none";
    }
    scheme.addEventListener("change", apply);
    apply();
  }

  function addItem() {
    var rows = document.querySelectorAll("fieldset.item");
    var last = rows[rows.length - 1];
    var n = rows.length;
    if (n >= 50) return;
    var copy = last.cloneNode(true);
    copy.dataset.item = String(n);
    copy.id = copy.id.replace(/\d+-row$/, n + "-row");
    copy.querySelector("legend").textContent = last.querySelector("legend").textContent.replace(/\d+/, String(n + 1));
    copy.querySelectorAll(".error").forEach(function (e) { e.remove(); });
    copy.querySelectorAll(".invalid").forEach(function (e) { e.classList.remove("invalid"); });
    copy.querySelectorAll("[id],[for],[name],[aria-describedby]").forEach(function (el) {
      ["id", "for", "name", "aria-describedby"].forEach(function (attr) {
        var v = el.getAttribute(attr);
        if (v) el.setAttribute(attr, v.replace(/items([.-])\d+([.-])/g, "items$1" + n + "$2"));
      });
      el.removeAttribute("aria-invalid");
      if (el.tagName === "INPUT") el.value = "";
      if (el.tagName === "SELECT") el.selectedIndex = 0;
    });
    last.after(copy);
    copy.querySelector("select, input").focus();
  }

  function localNow() {
    var d = new Date();
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 16);
  }

  function refresh(table) {
    fetch(table.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;  // our own server's escaped HTML fragment
        var fresh = holder.querySelector("#sent-table");
        if (!fresh) return;
        var current = byId("sent-table");
        current.replaceWith(fresh);
        window.bloFormatTimes(fresh);
      })
      .catch(function () {});
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = byId("alert-form");
    if (form) {
      byId("tz_offset").value = String(new Date().getTimezoneOffset());
      form.querySelectorAll("input[name=kind]").forEach(function (r) {
        r.addEventListener("change", function () { showKind(form); });
      });
      showKind(form);
      form.querySelectorAll("select[data-scheme-of]").forEach(narrowCodes);
      var observed = byId("f-seizure-case-observed_at");
      if (observed && !observed.value) observed.value = localNow();
      var add = byId("add-item");
      add.hidden = false;
      add.addEventListener("click", addItem);
      var summary = byId("error-summary");
      if (summary) summary.focus();
    }
    if (byId("sent-table")) {
      setInterval(function () { refresh(byId("sent-table")); }, 2000);
      refresh(byId("sent-table"));
    }
  });
})();
