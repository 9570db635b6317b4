// The member privacy center (/privacy), end to end in chromium.
//
// Asserts:
// - sign-in: the page is in the policy's language; the code goes to the
//   member's address; a wrong code is refused (422, announced as an
//   alert) and the right one signs in; the session cookie is HttpOnly,
//   SameSite=Strict and short-lived;
// - "Show my data": the items grouped under the policy's categories, the
//   e-mail address under "Contact details" with its purposes, source and
//   the day it is destroyed if the member is not active before (a year to
//   separate storage, three more to destruction, from the sign-up at
//   2024-06-01); at a phone's 360 px the page does not scroll sideways;
// - "Download my data": a file downloads, and it is JSON holding the
//   member's e-mail address;
// - consents: marketing is shown given, with its notice text and policy
//   version; "Withdraw consent" turns it to "Withdrawn";
// - a POST without the session's CSRF token is refused (403) and changes
//   nothing;
// - requests: a deletion request is filed and listed as verified with its
//   answer date;
// - the policy page shows the policy and the notice board;
// - signing out ends the session: the data page sends back to sign-in;
// - each page shot breaks no WCAG 2.1 A or AA rule axe-core checks.
import { readFileSync, writeFileSync } from "node:fs";
import { assert, assertAccessible, base, output, run, watchErrors } from "./lib.mjs";

const site = base("CUSTOS_URL");
const mail = base("MAIL_URL");
const email = base("MEMBER_EMAIL");
const tokenFile = base("TOKEN_FILE");

async function codeFromMail() {
  for (let i = 0; i < 100; i++) {
    const answer = await fetch(`${mail}/mail?to=${encodeURIComponent(email)}`);
    if (answer.ok) {
      const text = await answer.text();
      const found = /enter this code: (\d{8})/.exec(text);
      if (found) return found[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no sign-in code arrived");
}

await run("privacy center", async (browser) => {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  watchErrors(page, errors);

  // --- sign in ----------------------------------------------------------------
  await page.goto(`${site}/privacy`);
  assert.equal(await page.locator("html").getAttribute("lang"), "en");
  await page.getByRole("heading", { level: 1, name: "Privacy center" }).waitFor();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByRole("button", { name: "Send me a code" }).click();
  await page.getByRole("heading", { level: 1, name: "Enter your code" }).waitFor();
  const code = await codeFromMail();
  const wrong = code === "00000000" ? "11111111" : "00000000";
  await page.getByLabel("One-time code").fill(wrong);
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/privacy/code") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Sign in" }).click()
  ]);
  assert.equal(refused.status(), 422);
  assert.match(await page.getByRole("alert").textContent(), /does not match/);
  await page.getByLabel("One-time code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Your data" }).waitFor();
  const cookie = (await context.cookies()).find((c) => c.name === "custos_member");
  assert.ok(cookie, "a session cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(cookie.expires > 0 && cookie.expires - Date.now() / 1000 <= 30 * 60 + 5, "short-lived");
  writeFileSync(tokenFile, cookie.value);
  assert.equal(await page.getByRole("link", { name: "Your data" }).getAttribute("aria-current"), "page");

  // --- see the data --------------------------------------------------------------
  await page.getByRole("button", { name: "Show my data" }).click();
  const contact = page.getByRole("region", { name: "Contact details" });
  await contact.waitFor();
  const emailRow = contact.getByRole("row").filter({ hasText: email });
  assert.equal(await emailRow.count(), 1, "the e-mail address under Contact details");
  const cells = await emailRow.locator("td").allTextContents();
  assert.ok(cells.length === 5 && cells.every((c) => c.trim() !== ""), `purpose, source, dates: ${cells}`);
  assert.match(cells[4], /^2028-06-01/, `kept until: ${cells[4]}`);
  assert.match(await page.locator("#dormancy").textContent(), /separate storage on 2025-06-01 and destroyed on 2028-06-01/);
  assert.ok(await page.getByRole("region", { name: "Identity" }).getByText("Kim Minji").count() === 1);
  await page.screenshot({ path: `${output}privacy-center-data.png`, fullPage: true });
  await assertAccessible(page, "privacy-center-data");
  // Phone-sized: the page itself never scrolls sideways (wide tables
  // scroll in their own box).
  await page.setViewportSize({ width: 360, height: 740 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), "no sideways scrolling at 360 px");
  await page.setViewportSize({ width: 1000, height: 900 });

  // --- download ------------------------------------------------------------------
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download my data" }).click()
  ]);
  assert.match(download.suggestedFilename(), /^personal-data-\d{4}-\d{2}-\d{2}\.json$/);
  const saved = `${output}downloaded-export.json`;
  await download.saveAs(saved);
  const exported = JSON.parse(readFileSync(saved, "utf8"));
  const items = exported.package.items;
  assert.ok(items.some((i) => i.item === "email" && i.value === email), "the export holds the member's e-mail");

  // --- consents ------------------------------------------------------------------
  await page.getByRole("link", { name: "Consents" }).click();
  const marketing = page.getByRole("region", { name: /marketing/i });
  await marketing.waitFor();
  assert.equal(await marketing.locator(".status").textContent(), "Given");
  assert.ok((await marketing.locator("blockquote").textContent()).length > 20, "the notice text is shown");
  assert.match(await marketing.textContent(), /Notice of policy version 2023-02-21/);
  // A forged form without the CSRF token: refused, nothing changes.
  const forged = await page.evaluate(async () => {
    const r = await fetch("/privacy/consents", {
      method: "POST",
      body: new URLSearchParams({ purpose: "marketing", action: "withdraw" })
    });
    return r.status;
  });
  assert.equal(forged, 403);
  await page.reload();
  assert.equal(await marketing.locator(".status").textContent(), "Given", "the forged form changed nothing");
  await marketing.getByRole("button", { name: "Withdraw consent" }).click();
  await page.getByRole("status").filter({ hasText: "Your consent was withdrawn." }).waitFor();
  assert.equal(await marketing.locator(".status").textContent(), "Withdrawn");
  await page.screenshot({ path: `${output}privacy-center-consents.png`, fullPage: true });
  await assertAccessible(page, "privacy-center-consents");

  // --- ask for deletion ------------------------------------------------------------
  await page.getByRole("link", { name: "Requests" }).click();
  await page.getByLabel("What do you ask for?").selectOption("deletion");
  await page.getByRole("button", { name: "File the request" }).click();
  await page.getByRole("status").filter({ hasText: "Your request was filed." }).waitFor();
  const deletion = page.locator("#request-list tr[data-kind=deletion]");
  assert.equal(await deletion.count(), 1);
  const row = await deletion.locator("td").allTextContents();
  assert.equal(row[2], "verified");
  assert.match(row[4], /^\d{4}-\d{2}-\d{2} \(\d+ days left\)$/, `the answer deadline: ${row[4]}`);
  await page.screenshot({ path: `${output}privacy-center-requests.png`, fullPage: true });
  await assertAccessible(page, "privacy-center-requests");

  // --- the policy and the notice board ------------------------------------------------
  await page.getByRole("link", { name: "Privacy policy" }).click();
  await page.getByRole("heading", { name: "Notice board" }).waitFor();
  assert.ok((await page.locator("section.policy h2").count()) >= 10, "the policy's sections");

  // --- sign out ------------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { level: 1, name: "Privacy center" }).waitFor();
  await page.goto(`${site}/privacy/data`);
  await page.getByRole("heading", { level: 1, name: "Privacy center" }).waitFor();
  // The refused code (422) and the forged form (403) are the only errors.
  assert.deepEqual(errors.filter((e) => !/status of (422|403)/.test(e)), []);
  assert.equal(errors.length, 2, String(errors));
  await context.close();
});
