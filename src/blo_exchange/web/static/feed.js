// The analyst's live feed: Server-Sent Events from /analyst/stream (the API's stream, under the
// session cookie), newest first, filtered in the page by border pair, kind and TLP.
// Every value from an alert goes in with textContent, never as HTML.
"use strict";
(function () {
  var messages = {};
  function t(key, values) {
    var text = messages[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(values[name]);
    });
    return text;
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function tlpClass(tlp) { return "tlp-" + tlp.toLowerCase().replace("+", "-"); }
  // A decimal string ("1200.5") with the page language's CLDR symbols (given by the server).
  function number(text) {
    var parts = String(text).split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, messages["number.group"] || ",");
    return parts.length > 1 ? whole + (messages["number.decimal"] || ".") + parts[1] : whole;
  }

  function summary(alert) {
    var c = alert.case || {};
    if (alert.header.kind === "seizure" && c.items) {
      return c.items.map(function (item) {
        return number(item.quantity) + " " + t("vocab.Unit." + item.unit) + " · " + t("vocab.Substance." + item.substance);
      }).join("; ");
    }
    return c.subject || (c.outcome ? c.outcome : "");
  }

  function card(alert) {
    var h = alert.header;
    var li = el("li", "alert-card fresh");
    li.dataset.pair = h.border_pair;
    li.dataset.kind = h.kind;
    li.dataset.tlp = h.tlp;
    li.dataset.alertId = alert.alert_id;
    var top = el("div");
    top.appendChild(el("span", "tlp " + tlpClass(h.tlp), "TLP:" + h.tlp));
    top.appendChild(document.createTextNode(" "));
    var link = el("a", "title", t("kind." + h.kind) + " · " + h.border_pair + " · " + h.crossing_point);
    link.href = "/analyst/alerts/" + encodeURIComponent(alert.alert_id);
    top.appendChild(link);
    li.appendChild(top);
    li.appendChild(el("div", "", summary(alert)));
    var meta = el("div", "hint");
    var time = el("time", "", h.created_at);
    time.setAttribute("datetime", h.created_at);
    meta.appendChild(time);
    meta.appendChild(document.createTextNode(" · " + t("feed.from", { agency: h.origin_agency, crossing: h.crossing_point })));
    li.appendChild(meta);
    window.bloFormatTimes(li);
    setTimeout(function () { li.classList.remove("fresh"); }, 4000);
    return li;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("feed");
    if (!list) return;
    messages = JSON.parse(document.getElementById("feed-messages").textContent);
    var status = document.getElementById("feed-status");
    var empty = document.getElementById("feed-empty");
    var filters = document.getElementById("feed-filters");
    var seen = {};

    function visible(li) {
      var pair = filters.elements.border_pair.value;
      var kind = filters.elements.kind.value;
      var tlp = filters.elements.tlp.value;
      return (!pair || li.dataset.pair === pair) && (!kind || li.dataset.kind === kind) &&
             (!tlp || li.dataset.tlp === tlp);
    }
    function apply() {
      var shown = 0;
      list.querySelectorAll("li").forEach(function (li) {
        li.hidden = !visible(li);
        if (!li.hidden) shown += 1;
      });
      empty.hidden = shown > 0;
    }
    filters.addEventListener("change", apply);
    filters.addEventListener("submit", function (e) { e.preventDefault(); });

    // The browser reconnects by itself after a dropped stream, sending Last-Event-ID (the feed
    // position of the last alert). After a refused answer (a 503 while the node's database is
    // down) it gives up; then a new stream starts from that same position, a few seconds later.
    var position = 0;
    function connect() {
      var source = new EventSource("/analyst/stream?cursor=" + position);
      source.addEventListener("open", function () { status.textContent = t("feed.status.live"); });
      source.addEventListener("error", function () {
        status.textContent = t("feed.status.offline");
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
      });
      source.addEventListener("alert", function (event) {
        if (/^[0-9]+$/.test(event.lastEventId)) position = Number(event.lastEventId);
        var alert = JSON.parse(event.data);
        if (seen[alert.alert_id]) return;
        seen[alert.alert_id] = true;
        var li = card(alert);
        list.insertBefore(li, list.firstChild);
        apply();
      });
    }
    connect();
  });
})();
