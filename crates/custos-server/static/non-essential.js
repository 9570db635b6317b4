/* A stand-in for a non-essential script (analytics, advertising): it only
 * says that it ran. The demo page includes it inert, as
 * <script type="text/plain" data-custos-category="…">, so that it runs only
 * once the visitor granted its category. */
(function () {
  "use strict";
  var me = document.currentScript;
  var category = me ? me.getAttribute("data-custos-category") : null;
  window.custosDemoRan = window.custosDemoRan || {};
  if (category) window.custosDemoRan[category] = true;
  var status = category && document.getElementById("status-" + category);
  if (status) status.textContent = "ran";
})();
