// The cookie banner (/consent.js) on the demo page /demo/cookies.
//
// Asserts, on the b.stage policy (one category to choose: personalisation):
// - before any choice the banner opens as a labelled dialog with focus in
//   it, and the non-essential script has neither run nor been fetched;
// - the keyboard alone reaches every control in reading order (the
//   category's box, Reject all, Save choices, Accept all) and accepts;
// - once accepted the script runs, the banner is gone, and on the next
//   visit the script runs without asking again;
// - a visitor who rejects never gets the script, on this visit or the next.
// And on example-eu (analytics; marketing, which GPC turns off), with
// Global Privacy Control on (Sec-GPC: 1 and navigator.globalPrivacyControl):
// - the marketing box is disabled and says why; "Accept all" runs the
//   analytics script but never the marketing one, and the server's state
//   for the visitor says marketing is off because of GPC.
// The banner, open, breaks no WCAG 2.1 A or AA rule axe-core checks.
import { assert, assertAccessible, base, output, run, watchErrors } from "./lib.mjs";

const bstage = base("CUSTOS_URL");
const eu = base("CUSTOS_EU_URL");

function scriptFetches(page) {
  const fetched = [];
  page.on("request", (r) => {
    if (r.url().includes("/assets/non-essential.js")) fetched.push(r.url());
  });
  return fetched;
}

async function ran(page) {
  return page.evaluate(() => Object.keys(window.custosDemoRan || {}).sort());
}

await run("cookie banner", async (browser) => {
  // --- accept, by keyboard -------------------------------------------------
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    watchErrors(page, errors);
    const fetched = scriptFetches(page);
    await page.goto(`${bstage}/demo/cookies`);
    const banner = page.getByRole("dialog", { name: "Cookie settings" });
    await banner.waitFor();
    assert.equal(await page.locator("html").getAttribute("lang"), "en");
    assert.deepEqual(await ran(page), [], "nothing non-essential ran before consent");
    assert.deepEqual(fetched, [], "the non-essential script was not even fetched before consent");
    assert.equal(await page.locator("#status-personalisation").textContent(), "not run");
    // Labelled controls: the box is named by its label and described.
    const box = banner.getByRole("checkbox", { name: /Personalisation cookies/ });
    assert.equal(await box.isChecked(), false, "nothing is pre-ticked");
    assert.equal(await banner.getByRole("checkbox", { name: /always on/ }).isDisabled(), true);
    await page.screenshot({ path: `${output}cookie-banner.png`, fullPage: true });
    await assertAccessible(page, "cookie-banner");
    // Focus starts in the banner; Tab walks its controls in reading order.
    assert.equal(await page.evaluate(() => document.activeElement.id), "custos-banner-title");
    const order = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press("Tab");
      order.push(await page.evaluate(() => {
        const e = document.activeElement;
        return e.tagName === "BUTTON" ? e.textContent : e.id;
      }));
    }
    assert.deepEqual(order, ["custos-category-personalisation", "Reject all", "Save choices", "Accept all"]);
    await page.keyboard.press("Enter");
    await page.locator("#status-personalisation").filter({ hasText: "ran" }).waitFor();
    assert.deepEqual(await ran(page), ["personalisation"]);
    assert.equal(await banner.count(), 0, "the banner closed");
    // Next visit: remembered, runs at once, no banner.
    await page.reload();
    await page.locator("#status-personalisation").filter({ hasText: "ran" }).waitFor();
    assert.equal(await page.getByRole("dialog").count(), 0, "not asked again");
    assert.deepEqual(errors, []);
    await context.close();
  }

  // --- reject ---------------------------------------------------------------
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    const fetched = scriptFetches(page);
    await page.goto(`${bstage}/demo/cookies`);
    const banner = page.getByRole("dialog", { name: "Cookie settings" });
    await banner.getByRole("button", { name: "Reject all" }).click();
    await banner.waitFor({ state: "detached" });
    await page.reload();
    // The page has settled once custosConsent knows the state.
    await page.waitForFunction(() => window.custosConsent && window.custosConsent.visitor() !== null);
    await page.waitForLoadState("networkidle");
    assert.deepEqual(await ran(page), [], "a rejected category's script never runs");
    assert.deepEqual(fetched, []);
    assert.equal(await page.getByRole("dialog").count(), 0, "a choice was made: not asked again");
    // "Cookie settings" opens the choice again, with the refusal shown.
    await page.getByRole("button", { name: "Cookie settings" }).click();
    const again = page.getByRole("dialog", { name: "Cookie settings" });
    assert.equal(await again.getByRole("checkbox", { name: /Personalisation/ }).isChecked(), false);
    await context.close();
  }

  // --- Global Privacy Control ----------------------------------------------
  {
    const context = await browser.newContext({ extraHTTPHeaders: { "Sec-GPC": "1" } });
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true });
    });
    const page = await context.newPage();
    const fetched = scriptFetches(page);
    await page.goto(`${eu}/demo/cookies`);
    const banner = page.getByRole("dialog", { name: "Cookie settings" });
    await banner.waitFor();
    const marketing = banner.getByRole("checkbox", { name: /Marketing/ });
    assert.equal(await marketing.isDisabled(), true, "GPC turns marketing off");
    assert.match(await banner.locator("label[for=custos-category-marketing]").textContent(), /Global Privacy Control/);
    await page.screenshot({ path: `${output}cookie-banner-gpc.png`, fullPage: true });
    await assertAccessible(page, "cookie-banner-gpc");
    await banner.getByRole("button", { name: "Accept all" }).click();
    await page.locator("#status-analytics").filter({ hasText: "ran" }).waitFor();
    await page.reload();
    await page.locator("#status-analytics").filter({ hasText: "ran" }).waitFor();
    await page.waitForLoadState("networkidle");
    assert.deepEqual(await ran(page), ["analytics"], "the marketing script never runs under GPC");
    assert.equal(await page.locator("#status-marketing").textContent(), "not run");
    assert.ok(fetched.length >= 1);
    // The server's word on this visitor, asked with the GPC signal.
    const visitor = await page.evaluate(() => window.custosConsent.visitor());
    const state = await page.evaluate(async (v) => (await fetch(`/v1/cookie-consent?visitor=${v}`)).json(), visitor);
    const byId = Object.fromEntries(state.categories.map((c) => [c.id, c]));
    assert.equal(state.gpc, true);
    assert.equal(byId.marketing.granted, false, "sale/share stays off");
    assert.equal(byId.analytics.granted, true);
    await context.close();
  }
});
