// Shared by every page: dates in the reader's locale (the page's language), with Intl.
// The server already wrote each <time> in that language (UTC); a browser whose Intl lacks the
// language (some chromium builds have no Tajik) keeps the server's text rather than English.
"use strict";
(function () {
  function formatTimes(root) {
    var lang = document.documentElement.lang || undefined;
    if (lang && Intl.DateTimeFormat.supportedLocalesOf([lang]).length === 0) return;
    var withTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });
    var dateOnly = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" });
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var value = el.getAttribute("datetime");
      var date = new Date(value);
      if (isNaN(date.getTime())) return;
      el.textContent = value.length <= 10 ? dateOnly.format(date) : withTime.format(date);
      el.title = value;
    });
  }
  window.bloFormatTimes = formatTimes;
  document.addEventListener("DOMContentLoaded", function () { formatTimes(document); });
})();
