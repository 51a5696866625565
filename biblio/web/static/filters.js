// The list page's filter panel is a <details>: folded above the results on phones, a side
// column on wide screens. Here it is kept open on wide screens (the stylesheet already
// shows it there, so nothing moves; this keeps `open`, and what assistive technology
// says about it, true), and its heading does not fold it there. Without JavaScript the
// panel still works: a tap on "Filter" opens it.
(function () {
  "use strict";
  var panel = document.getElementById("filters");
  if (!panel || !window.matchMedia) { return; }
  var wide = window.matchMedia("(min-width: 48.0625rem)");
  var summary = panel.querySelector("summary");
  function fit() {
    if (wide.matches) {
      panel.open = true;
      summary.setAttribute("tabindex", "-1");
    } else {
      summary.removeAttribute("tabindex");
    }
  }
  fit();
  if (wide.addEventListener) { wide.addEventListener("change", fit); }
  summary.addEventListener("click", function (event) {
    if (wide.matches) { event.preventDefault(); }
  });
})();
