/* The cookie demo page's own script (strictly necessary): the "Cookie
 * settings" button opens the banner again. */
(function () {
  "use strict";
  var button = document.getElementById("cookie-settings");
  if (button) button.addEventListener("click", function () { if (window.custosConsent) window.custosConsent.show(); });
})();
