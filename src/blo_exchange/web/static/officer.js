// The officer's form: show the chosen kind's fields, narrow code lists to the chosen scheme,
// send the browser's UTC offset with local times, add item rows, take the error summary's links
// to their fields, and keep the sent list current.
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

  // An error summary link lands on its field: open the folded section that holds it, focus the
  // field, and show its label (the fragment alone would only scroll, and not into a closed box).
  function toField(event, form) {
    var link = event.target.closest("a[href^='#']");
    if (!link) return;
    var field = byId(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    var folded = field.closest("details");
    if (folded) folded.open = true;
    field.focus();
    var label = form.querySelector('label[for="' + field.id + '"]');
    (label || field).scrollIntoView({ block: "start" });
  }

  function localNow() {
    var d = new Date();
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 16);
  }

  // The sent list: one Server-Sent Events stream says when the list's version changes, and only
  // then is the list fetched. Nothing is fetched while the tab is hidden; keyboard focus inside
  // the list stays on the same alert's link across an update.
  function liveSent(table) {
    var source = null;
    var fetching = false;
    var wanted = null;

    function swap(html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;  // our own server's escaped HTML fragment
      var fresh = holder.querySelector("#sent-table");
      var current = byId("sent-table");
      if (!fresh || !current) return;
      var active = document.activeElement;
      var card = active && current.contains(active) ? active.closest("[data-alert]") : null;
      current.replaceWith(fresh);
      window.bloFormatTimes(fresh);
      if (card) {
        var again = fresh.querySelector('[data-alert="' + card.dataset.alert + '"] a');
        (again || fresh.querySelector("a") || byId("main")).focus();
      }
      var updated = byId("sent-updated");
      if (updated) updated.textContent = updated.dataset.text || "";
    }

    function fetchList() {
      var current = byId("sent-table");
      if (fetching || !current || wanted === current.dataset.version) return;
      fetching = true;
      var asked = wanted;
      fetch(current.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html) swap(html); })
        .catch(function () {})
        .then(function () {
          fetching = false;
          if (wanted !== asked) fetchList();  // a newer version came while this one loaded
        });
    }

    function open() {
      if (source || !window.EventSource) return;
      source = new EventSource(table.dataset.events);
      source.addEventListener("version", function (event) {
        wanted = event.data;
        fetchList();
      });
    }
    function close() {
      if (source) source.close();
      source = null;
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) close(); else open();
    });
    if (!document.hidden) open();
  }

  // Files: each chosen file is sent in parts (PATCH at Upload-Offset). After a drop the upload
  // asks the node where it stands (HEAD) and goes on from there, pausing longer after each
  // failed try. A file sent completely becomes a hidden "attachments" field of the form, and
  // the form is not sent while a file is still on its way.
  function uploads(box, form) {
    var csrf = form.querySelector("input[name=csrf]").value;
    var list = byId("f-upload-list");
    var part = parseInt(box.dataset.part, 10);
    var busy = 0;
    function fill(template, values) {
      return template.replace(/\{(\w+)\}/g, function (_, k) { return String(values[k]); });
    }
    function json(r) { return r.json().catch(function () { return {}; }); }
    function send(file, nominal) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      var bar = document.createElement("progress");
      bar.max = file.size;
      bar.value = 0;
      var state = document.createElement("span");
      state.className = "state";
      item.append(name, " ", bar, " ", state);
      list.append(item);
      busy += 1;
      var id = null, offset = 0, pause = 500;
      var url = function () { return box.dataset.upload + "/" + id; };
      function headers(extra) { return Object.assign({ "X-CSRF-Token": csrf }, extra || {}); }
      function fail(detail) {
        busy -= 1;
        item.className = "failed";
        state.textContent = fill(box.dataset.msgFailed, { detail: detail });
      }
      function done() {
        busy -= 1;
        item.className = "ready";
        state.textContent = box.dataset.msgDone;
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "attachments";
        hidden.value = id;
        box.append(hidden);
      }
      function later(what) {
        state.textContent = box.dataset.msgRetry;
        setTimeout(what, pause);
        pause = Math.min(pause * 2, 15000);
      }
      function resume() {
        fetch(url(), { method: "HEAD", credentials: "same-origin", headers: headers() })
          .then(function (r) {
            if (!r.ok) throw new Error(String(r.status));
            offset = parseInt(r.headers.get("Upload-Offset"), 10);
            pause = 500;
            next();
          })
          .catch(function () { later(resume); });
      }
      function next() {
        fetch(url(), {
          method: "PATCH",
          credentials: "same-origin",
          headers: headers({
            "Upload-Offset": String(offset),
            "Content-Type": "application/offset+octet-stream",
          }),
          body: file.slice(offset, offset + part),
        })
          .then(function (r) {
            return json(r).then(function (body) {
              if (r.status === 409 || r.status >= 500) return later(resume);
              if (!r.ok) return fail(body.detail || r.status);
              offset = body.offset;
              bar.value = offset;
              state.textContent = fill(box.dataset.msgProgress, {
                percent: Math.floor((100 * offset) / file.size),
              });
              if (body.state === "ready") done(); else next();
            });
          })
          .catch(function () { later(resume); });
      }
      function start() {
        fetch(box.dataset.upload, {
          method: "POST",
          credentials: "same-origin",
          headers: headers({ "Content-Type": "application/json" }),
          body: JSON.stringify({
            length: file.size,
            filename: file.name,
            content_type: file.type || "application/octet-stream",
            nominal: nominal,
            keep_location: byId("f-keep-location").checked,
          }),
        })
          .then(function (r) {
            return json(r).then(function (body) {
              if (r.status >= 500) return later(start);
              if (!r.ok) return fail(body.detail || r.status);
              id = body.upload_id;
              next();
            });
          })
          .catch(function () { later(start); });
      }
      start();
    }
    box.querySelectorAll("input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () {
        Array.prototype.forEach.call(input.files, function (file) {
          send(file, input.dataset.nominal === "1");
        });
        input.value = "";  // sent by this script, not a second time with the form
      });
    });
    form.addEventListener("submit", function (event) {
      if (busy === 0) return;
      event.preventDefault();
      var wait = byId("f-upload-wait") || document.createElement("p");
      wait.id = "f-upload-wait";
      wait.className = "error";
      wait.setAttribute("role", "alert");
      wait.textContent = box.dataset.msgWait;
      list.before(wait);
    });
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
      if (summary) {
        summary.addEventListener("click", function (event) { toField(event, form); });
        summary.focus();
      }
    }
    if (form && byId("f-attachments")) uploads(byId("f-attachments"), form);
    if (byId("sent-table")) liveSent(byId("sent-table"));
  });
})();
