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
    if (returnFocus && returnFocus.focus && document.contains(returnFocus)) returnFocus.focus();
    returnFocus = null;
  }

  // Styles are set property by property (CSSOM), never as a style
  // attribute or a <style> element, so a page's Content-Security-Policy
  // need not allow inline styles for the banner.
  function styled(element, css) {
    Object.keys(css).forEach(function (k) { element.style[k] = css[k]; });
    return element;
  }

  var BUTTON = {
    font: "inherit", minHeight: "44px", padding: "0.5em 1em", marginRight: "0.5em", marginTop: "0.5em",
    borderRadius: "4px", border: "1px solid #0b5cad", background: "#0b5cad", color: "#fff", cursor: "pointer"
  };

  // The choice: a non-modal dialog at the bottom of the page, named by its
  // heading and described by the policy's words; one labelled box per
  // category (nothing pre-ticked; necessary ones checked and disabled, GPC
  // ones unchecked and disabled, each saying why); three equal buttons.
  // Focus moves into it when it opens and back to where it was when it
  // closes; Tab goes heading, boxes, buttons in reading order. Names and
  // descriptions are set as text, never as markup.
  var returnFocus = null;

  function show() {
    if (banner || !categories.length || !document.body) return;
    returnFocus = document.activeElement;
    banner = styled(document.createElement("div"), {
      position: "fixed", left: "0", right: "0", bottom: "0", zIndex: "2147483647", maxHeight: "80vh",
      overflowY: "auto", padding: "1em", background: "#fff", color: "#1a1a1a", borderTop: "2px solid #0b5cad",
      boxShadow: "0 -2px 8px rgba(0,0,0,0.2)", font: "15px/1.45 system-ui, sans-serif"
    });
    banner.setAttribute("role", "dialog");
    banner.setAttribute("aria-modal", "false");
    banner.setAttribute("aria-labelledby", "custos-banner-title");
    banner.setAttribute("aria-describedby", "custos-banner-about");
    banner.setAttribute("data-custos-banner", "");
    var inner = styled(document.createElement("div"), { maxWidth: "56em", margin: "0 auto" });
    banner.appendChild(inner);
    var title = styled(document.createElement("h2"), { fontSize: "1.15em", margin: "0 0 0.25em" });
    title.id = "custos-banner-title";
    title.tabIndex = -1;
    title.textContent = "Cookie settings";
    inner.appendChild(title);
    var about = styled(document.createElement("p"), { margin: "0 0 0.5em" });
    about.id = "custos-banner-about";
    about.textContent = "Choose which cookies this site may use. Only strictly necessary cookies are on " +
      "until you choose; you can change your choice at any time.";
    inner.appendChild(about);
    var fieldset = styled(document.createElement("fieldset"), { border: "0", margin: "0", padding: "0" });
    var legend = styled(document.createElement("legend"), { fontWeight: "600", padding: "0" });
    legend.textContent = "Categories";
    fieldset.appendChild(legend);
    var boxes = {};
    categories.forEach(function (c) {
      var blocked = gpc && c.gpc_opt_out;
      var row = styled(document.createElement("div"), { margin: "0.4em 0" });
      var box = styled(document.createElement("input"), { width: "1.2em", height: "1.2em", verticalAlign: "middle" });
      box.type = "checkbox";
      box.id = "custos-category-" + c.id;
      box.name = c.id;
      box.checked = c.necessary || (c.granted && !blocked);
      box.disabled = c.necessary || blocked;
      boxes[c.id] = box;
      var label = styled(document.createElement("label"), { display: "inline", fontWeight: "600", margin: "0 0 0 0.4em" });
      label.htmlFor = box.id;
      var note = c.necessary ? " (always on)" : blocked ? " (off: Global Privacy Control)" : "";
      label.textContent = c.name + note;
      var help = styled(document.createElement("small"), { display: "block", marginLeft: "1.6em", color: "#555" });
      help.id = box.id + "-about";
      help.textContent = c.description;
      box.setAttribute("aria-describedby", help.id);
      row.appendChild(box);
      row.appendChild(label);
      row.appendChild(help);
      fieldset.appendChild(row);
    });
    inner.appendChild(fieldset);
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
      var button = styled(document.createElement("button"), BUTTON);
      button.type = "button";
      button.textContent = b[0];
      button.addEventListener("click", function () { save(choices(b[1])); });
      inner.appendChild(button);
    });
    document.body.appendChild(banner);
    title.focus();
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
