/*
 * Custos cookie consent: a small, dependency-free script to embed in a
 * site's pages.
 *
 *   <script src="https://custos.example.org/consent.js"></script>
 *
 * How a non-essential category never runs before consent: the page marks
 * every script of a non-essential category as inert, with the category it
 * belongs to,
 *
 *   <script type="text/plain" data-custos-category="personalisation" src="/p.js"></script>
 *
 * A browser never runs a script of type "text/plain". This script replaces
 * such an element with a live copy (every attribute but `type`; set
 * `data-custos-type="module"` for a module) only once its category is
 * granted. Until the visitor's choice is known, when it is refused, when
 * the API cannot be reached, and when Global Privacy Control turns the
 * category off, the script stays inert. Strictly necessary categories are
 * always on. Turning a category off later stops nothing that already ran:
 * listeners are told at once, scripts stay off from the next page load.
 *
 * What it does:
 * - reads the policy's categories and the visitor's state from the API
 *   (GET /v1/cookie-consent) of the origin this script came from;
 * - shows a minimal choice only when a non-necessary category has no choice
 *   yet, and records choices with POST /v1/cookie-consent;
 * - keeps the visitor id in the first-party cookie `custos_visitor` (it
 *   only remembers the choice: strictly necessary). The site's backend may
 *   send it to POST /v1/subjects/{id}/cookie-consent when the visitor signs
 *   in, so that their choices become the member's;
 * - honours Global Privacy Control: with navigator.globalPrivacyControl the
 *   categories the policy lets GPC turn off stay off whatever the answer
 *   says (the browser also sends `Sec-GPC: 1`, which the server records);
 * - exposes window.custosConsent:
 *     get(category)     true only once the category is known to be granted;
 *     on(category, fn)  fn(granted) once the state is known, then on every change;
 *     show()            opens the choice again (for a "cookie settings" link);
 *     visitor()         the visitor id, or null.
 */
(function () {
  "use strict";

  var COOKIE = "custos_visitor";
  var VISITOR = /^vis_[0-9a-f]{32}$/;
  // How long the browser keeps the visitor id; then the visitor is asked again.
  var MAX_AGE_SECONDS = 180 * 24 * 60 * 60;

  var me = document.currentScript;
  var api = new URL(me && me.src ? me.src : location.href).origin + "/v1/cookie-consent";
  var gpc = navigator.globalPrivacyControl === true;

  var categories = []; // as the API answers them
  var granted = {}; // category id -> true or false, once known
  var listeners = {}; // category id -> [fn]
  var banner = null;

  function readVisitor() {
    var parts = document.cookie.split(";");
    for (var i = 0; i < parts.length; i++) {
      var pair = parts[i].trim().split("=");
      if (pair[0] === COOKIE && VISITOR.test(pair[1])) return pair[1];
    }
    return null;
  }

  function keepVisitor(id) {
    if (!VISITOR.test(id)) return;
    document.cookie = COOKIE + "=" + id + "; Path=/; Max-Age=" + MAX_AGE_SECONDS + "; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }

  function isOn(category) {
    return granted[category] === true;
  }

  function tell(fn, on) {
    try {
      fn(on);
    } catch (e) {
      setTimeout(function () { throw e; });
    }
  }

  // Replaces every inert script of a granted category with a live copy.
  function activate() {
    var inert = document.querySelectorAll('script[type="text/plain"][data-custos-category]');
    Array.prototype.forEach.call(inert, function (old) {
      if (!isOn(old.getAttribute("data-custos-category")) || !old.parentNode) return;
      var live = document.createElement("script");
      Array.prototype.forEach.call(old.attributes, function (a) {
        if (a.name !== "type") live.setAttribute(a.name, a.value);
      });
      var type = old.getAttribute("data-custos-type");
      if (type) live.type = type;
      live.text = old.text;
      old.parentNode.replaceChild(live, old);
    });
  }

  // Takes the API's answer: the categories, their state, the visitor id.
  function apply(answer) {
    if (answer.visitor) keepVisitor(answer.visitor);
    categories = answer.categories || [];
    categories.forEach(function (c) {
      var on = c.necessary || (c.granted && !(gpc && c.gpc_opt_out));
      var known = Object.prototype.hasOwnProperty.call(granted, c.id);
      var changed = !known || granted[c.id] !== on;
      granted[c.id] = on;
      if (changed) (listeners[c.id] || []).forEach(function (fn) { tell(fn, on); });
    });
    activate();
  }

  function request(method, body) {
    var url = api;
    var visitor = readVisitor();
    if (method === "GET" && visitor) url += "?visitor=" + encodeURIComponent(visitor);
    return fetch(url, {
      method: method,
      credentials: "omit",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (response) {
      if (!response.ok) throw new Error("custos: " + method + " " + url + " answered " + response.status);
      return response.json();
    });
  }

  function save(choices) {
    var body = { choices: choices };
    var visitor = readVisitor();
    if (visitor) body.visitor = visitor;
    return request("POST", body).then(function (answer) {
      apply(answer);
      hide();
    }).catch(report);
  }

  function report(error) {
    if (window.console) window.console.warn(error);
  }

  // Whether a category the visitor may choose has no choice yet.
  function pending() {
    return categories.some(function (c) {
      return !c.necessary && c.basis === "not_chosen" && !(gpc && c.gpc_opt_out);
    });
  }

  function hide() {
    if (banner && banner.parentNode) banner.parentNode.removeChild(banner);
    banner = null;
  }

  // The minimal choice: one box per category (nothing pre-ticked), and
  // three equal buttons. Names and descriptions are set as text, never as
  // markup.
  function show() {
    if (banner || !categories.length || !document.body) return;
    banner = document.createElement("div");
    banner.setAttribute("role", "dialog");
    banner.setAttribute("aria-label", "Cookie settings");
    banner.setAttribute("data-custos-banner", "");
    banner.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;padding:1em;" +
      "background:#fff;color:#000;border-top:1px solid #888;font:14px/1.4 sans-serif";
    var boxes = {};
    categories.forEach(function (c) {
      var blocked = gpc && c.gpc_opt_out;
      var label = document.createElement("label");
      label.style.display = "block";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = c.necessary || (c.granted && !blocked);
      box.disabled = c.necessary || blocked;
      boxes[c.id] = box;
      label.appendChild(box);
      var note = c.necessary ? " (always on)" : blocked ? " (off: Global Privacy Control)" : "";
      label.appendChild(document.createTextNode(" " + c.name + note));
      var about = document.createElement("small");
      about.style.display = "block";
      about.textContent = c.description;
      label.appendChild(about);
      banner.appendChild(label);
    });
    function choices(pick) {
      var out = {};
      categories.forEach(function (c) {
        if (!c.necessary && !(gpc && c.gpc_opt_out)) out[c.id] = pick(boxes[c.id]);
      });
      return out;
    }
    [
      ["Reject all", function () { return false; }],
      ["Save choices", function (box) { return box.checked; }],
      ["Accept all", function () { return true; }]
    ].forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = b[0];
      button.style.marginRight = "0.5em";
      button.addEventListener("click", function () { save(choices(b[1])); });
      banner.appendChild(button);
    });
    document.body.appendChild(banner);
  }

  function start() {
    request("GET").then(function (answer) {
      apply(answer);
      if (pending()) show();
      // Inert scripts added later are activated as they come.
      if (window.MutationObserver) {
        new MutationObserver(activate).observe(document.documentElement, { childList: true, subtree: true });
      }
    }).catch(report); // nothing non-essential runs: every such category stays off
  }

  window.custosConsent = {
    get: function (category) {
      return isOn(category);
    },
    on: function (category, fn) {
      (listeners[category] = listeners[category] || []).push(fn);
      if (Object.prototype.hasOwnProperty.call(granted, category)) tell(fn, isOn(category));
    },
    show: show,
    visitor: readVisitor
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
