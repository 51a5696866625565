// "Copy citation" buttons: copy the text of the element named by data-copy.
// Without JavaScript (or clipboard access) the button stays hidden; the text is selectable.
(function () {
  "use strict";
  if (!navigator.clipboard) { return; }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.innerText.trim()).then(function () {
        if (status) { status.textContent = "Citation copied."; }
      }, function () {
        if (status) { status.textContent = "Could not copy; select the text instead."; }
      });
    });
  });
})();
