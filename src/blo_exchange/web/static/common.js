// Shared by every page: dates in the reader's locale (the page's language).
// The server writes each <time> in the page's language by CLDR rules, in UTC. Where the browser's
// Intl is known to carry that language in full (English, Russian), it rewrites them in the
// reader's own time zone; elsewhere (chromium formats Uzbek as "2026 M12 4") it keeps the
// server's text, and a time a script added raw (the live feed) is shown as ISO 8601 in UTC.
"use strict";
(function () {
  var FULL_INTL = ["en", "ru"];
  function isoUtc(date, withTime) {
    var iso = date.toISOString();
    return withTime ? iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC" : iso.slice(0, 10);
  }
  function formatTimes(root) {
    var lang = document.documentElement.lang || "en";
    var intl = FULL_INTL.indexOf(lang) >= 0;
    var withTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });
    var dateOnly = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" });
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var value = el.getAttribute("datetime");
      var date = new Date(value);
      if (isNaN(date.getTime())) return;
      var short = value.length <= 10;
      if (intl) {
        el.textContent = short ? dateOnly.format(date) : withTime.format(date);
      } else if (el.textContent.trim() === value) {
        el.textContent = isoUtc(date, !short);
      }
      el.title = value;
    });
  }
  window.bloFormatTimes = formatTimes;
  document.addEventListener("DOMContentLoaded", function () { formatTimes(document); });
})();
