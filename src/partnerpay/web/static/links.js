// Copy buttons on the links page; without JavaScript the links stay selectable in their read-only fields.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy");
    var input = document.getElementById(id);
    var status = document.querySelector('[data-copied="' + id + '"]');
    if (!input) return;
    function done(text) { if (status) status.textContent = text; }
    input.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(function () { done("Copied."); }, function () {
        done(document.execCommand("copy") ? "Copied." : "Press Ctrl+C to copy.");
      });
    } else {
      done(document.execCommand("copy") ? "Copied." : "Press Ctrl+C to copy.");
    }
  });
})();
