// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // "Select every line on this page": ticks the row checkboxes that belong to the named form.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[data-select-all]")) return;
    var selector = 'input[type="checkbox"][name="ids"][form="' + box.getAttribute("data-select-all") + '"]';
    document.querySelectorAll(selector).forEach(function (row) { row.checked = box.checked; });
  });

  // A row swapped in by HTMX replaces the button that had the focus: give the focus to the new row.
  var swappedRow = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var row = event.detail.elt.closest && event.detail.elt.closest("tr[id]");
    swappedRow = row ? row.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var row = swappedRow && document.getElementById(swappedRow);
    swappedRow = null;
    if (!row) return;
    row.setAttribute("tabindex", "-1");
    row.focus();
  });

  // Plain forms with data-confirm ask first and say exactly what will happen.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
