/* WECARE.DIGITAL pages: small progressive enhancements. Everything works without this file.
   Loaded from 'self' only (strict CSP): no inline handlers, no eval. */
(function () {
  "use strict";

  // Times are rendered by the server in the platform's time zone; show them in the reader's own.
  function localiseTimes(root) {
    var nodes = (root || document).querySelectorAll("time[data-local]");
    nodes.forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var style = node.getAttribute("data-local");
      var options = style === "time"
        ? { hour: "2-digit", minute: "2-digit", hour12: false }
        : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false };
      node.textContent = when.toLocaleString(undefined, options);
      node.title = when.toString();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localiseTimes(document); });
  document.addEventListener("htmx:afterSettle", function (event) { localiseTimes(event.target); });
})();
