// `custos serve --demo`, the real binary on the wall clock: every page
// with the demo data, and the screenshots of the main pages
// (output/screen-*.png; copies are kept in docs/screenshots/).
//
// Asserts:
// - the demo's members are made-up ("Demo …") and one signs in to the
//   privacy center with the code the demo's mailbox (/demo/mail) shows;
// - the demo officer signs in to the staff console with the password and
//   a TOTP code computed from the printed secret; the queue holds the three
//   demo requests (a member's correction, verified; an agent's access
//   request, received; a complaint, worked like a request) and the
//   member's own access request, fulfilled;
// - the agent's request is verified and fulfilled from its page;
// - a member's page read for member management shows their demo name; the
//   complaints page lists the demo complaint; the processing page shows;
// - the cookie banner shows on the demo page;
// - every page shot breaks no WCAG 2.1 A or AA rule axe-core checks.
import { createHmac } from "node:crypto";
import { assert, assertAccessible, base, output, run, watchErrors } from "./lib.mjs";

const site = base("CUSTOS_URL");
const secret = base("TOTP_SECRET");

// RFC 6238 with SHA-1, 6 digits, 30-second steps, at `seconds`.
function totp(base32, seconds) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

// Every page shot is also checked against WCAG 2.1 A and AA (axe-core).
async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: `${output}screen-${name}.png`, fullPage });
  await assertAccessible(page, name);
}

await run("demo", async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  watchErrors(page, errors);

  // --- a member, in the privacy center ------------------------------------------
  await page.goto(`${site}/privacy`);
  await shot(page, "privacy-sign-in", false);
  await page.getByLabel("E-mail address").fill("demo-member-1@example.com");
  await page.getByRole("button", { name: "Send me a code" }).click();
  await page.getByRole("heading", { level: 1, name: "Enter your code" }).waitFor();
  const mail = await context.newPage();
  await mail.goto(`${site}/demo/mail`);
  const code = /enter this code: (\d{8})/.exec(await mail.locator("main").innerText())[1];
  await shot(mail, "demo-mail", false);
  await mail.close();
  await page.getByLabel("One-time code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Show my data" }).click();
  await page.getByRole("region", { name: "Identity" }).getByText("Demo Member Lee").waitFor();
  await shot(page, "privacy-data");
  await page.getByRole("link", { name: "Consents" }).click();
  await page.locator("#state-marketing").waitFor();
  await shot(page, "privacy-consents");
  await page.getByRole("link", { name: "Requests" }).click();
  await shot(page, "privacy-requests");
  await page.getByRole("link", { name: "Privacy policy" }).click();
  await shot(page, "privacy-policy", false);

  // --- the officer, in the staff console --------------------------------------------
  await page.goto(`${site}/staff`);
  await page.getByLabel("E-mail address").fill("demo-officer@example.com");
  await page.getByLabel("Password").fill("demo officer passphrase");
  await page.getByLabel("Code from your authenticator app").fill(totp(secret, Date.now() / 1000));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Request queue" }).waitFor();
  // The demo's open requests (and the access request the member's data
  // page just filed and had fulfilled at once).
  const rows = await page.locator("#queue tbody tr").evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].slice(1, 4).map((td) => td.textContent).join(" ")));
  assert.deepEqual(rows.sort(),
    ["access agent received", "access member fulfilled", "complaint member verified", "correction member verified"]);
  await shot(page, "staff-queue");
  await page.locator("#queue tbody tr").filter({ hasText: "agent" }).getByRole("link").click();
  await page.getByRole("button", { name: "Verify the requester" }).click();
  await page.getByRole("button", { name: "Fulfil the request" }).click();
  await page.getByRole("link", { name: "Open the answer" }).waitFor();
  await shot(page, "staff-request");
  await page.getByRole("link", { name: "Members", exact: true }).click();
  await page.locator("#members tbody tr").first().getByRole("link").click();
  await page.getByLabel("Read for the purpose").selectOption({ label: "Member management" });
  await page.getByRole("button", { name: "Read" }).click();
  await page.locator("#member").getByText(/^Demo /).first().waitFor();
  await shot(page, "staff-member");
  await page.getByRole("link", { name: "Complaints" }).click();
  assert.equal(await page.locator("#complaints tbody tr").count(), 1, "the demo complaint");
  await shot(page, "staff-complaints");
  await page.getByRole("link", { name: "Processors and provisions" }).click();
  await shot(page, "staff-processing");

  // --- the cookie banner ----------------------------------------------------------------
  await page.goto(`${site}/demo/cookies`);
  await page.getByRole("dialog", { name: "Cookie settings" }).waitFor();
  await shot(page, "cookie-banner", false);
  assert.deepEqual(errors, []);
  await context.close();
});
