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

  // A form part marked data-adapt shows only the fields of the chosen channel and message kind
  // (data-channels / data-kinds: space-separated values); hidden fields are disabled, so they are
  // not submitted. Without this script every field shows and the server ignores the others.
  function adaptFields(part) {
    var form = part.closest("form");
    var channelSelect = form.querySelector("select[name=channel]");
    var channel = channelSelect ? channelSelect.value : "";
    var checked = form.querySelector("input[name=kind]:checked");
    var kind = channel === "whatsapp" && checked ? checked.value : "text";
    function fits(node, name, value) {
      var wanted = node.getAttribute(name);
      return wanted === null || wanted.split(" ").indexOf(value) !== -1;
    }
    part.querySelectorAll("[data-channels], [data-kinds]").forEach(function (node) {
      var show = fits(node, "data-channels", channel) && fits(node, "data-kinds", kind);
      node.hidden = !show;
    });
    part.querySelectorAll("input, select, textarea").forEach(function (control) {
      control.disabled = control.closest("[hidden]") !== null;
    });
  }

  function setUpAdapting(root) {
    (root || document).querySelectorAll("[data-adapt]").forEach(function (part) {
      var form = part.closest("form");
      if (!form || form.dataset.adapting) return;
      form.dataset.adapting = "yes";
      form.addEventListener("change", function (event) {
        if (event.target.name === "channel" || event.target.name === "kind") adaptFields(part);
      });
      adaptFields(part);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setUpAdapting(document); });
  document.addEventListener("DOMContentLoaded", function () { localiseTimes(document); });
  document.addEventListener("htmx:afterSettle", function (event) { localiseTimes(event.target); });
})();
