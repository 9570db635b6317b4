// The staff console (/staff), end to end in chromium: a privacy officer
// logs a request an agent sent with a letter of attorney, verifies it and
// fulfils it.
//
// Asserts:
// - sign-in needs the password and the second factor: a wrong code is
//   refused (401, announced as an alert), the right one opens the queue;
//   the session cookie is HttpOnly and SameSite=Strict;
// - logging an agent's access request shows it received, from an agent,
//   with the agent's name and the SHA-256 of the letter as typed;
// - "Verify the requester" makes it verified, "Fulfil the request"
//   fulfilled, and the answer holds the member's e-mail address;
// - the queue lists it with its status and answer date;
// - the members page lists the member; the policy page names the version
//   in force; on the audit log page the checkpoint shown is verified
//   against a newer one the platform signed (signature and consistency
//   proof), and a forged root for the same size is found not consistent;
// - signing out ends the session: the queue sends back to sign-in.
import { createHash } from "node:crypto";
import { assert, base, output, run, watchErrors } from "./lib.mjs";

const site = base("CUSTOS_URL");
const email = base("STAFF_EMAIL");
const password = base("STAFF_PASSWORD");
const code = base("STAFF_CODE");
const member = base("MEMBER_ID");
const platformKey = base("PLATFORM_KEY");
const memberEmail = base("MEMBER_EMAIL");
const letter = "I, Kim Minji, authorise Kim Agent to ask for a copy of my personal information.";

async function fact(page, name) {
  return (await page.locator("#facts tr").filter({ has: page.getByRole("rowheader", { name, exact: true }) })
    .locator("td").textContent()).trim();
}

await run("staff console", async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  watchErrors(page, errors);

  // --- sign in: password and second factor -------------------------------------
  await page.goto(`${site}/staff`);
  await page.getByRole("heading", { level: 1, name: "Staff sign-in" }).waitFor();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Code from your authenticator app").fill(code === "000000" ? "111111" : "000000");
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/staff/login")),
    page.getByRole("button", { name: "Sign in" }).click()
  ]);
  assert.equal(refused.status(), 401);
  assert.match(await page.getByRole("alert").textContent(), /password or code is wrong/);
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Code from your authenticator app").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Request queue" }).waitFor();
  const cookie = (await context.cookies()).find((c) => c.name === "custos_staff");
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === "Strict", "the staff session cookie");
  assert.match(await page.locator("main").textContent(), /The queue is empty/);

  // --- an agent's request, logged ------------------------------------------------
  await page.getByRole("link", { name: "Log a request" }).click();
  await page.getByLabel("Member id").fill(member);
  await page.getByLabel("Kind").selectOption("access");
  await page.getByLabel("Received by").selectOption("email");
  await page.getByLabel("Agent's name").fill("Kim Agent");
  await page.getByLabel("Agent's contact").fill("agent@example.com");
  await page.getByLabel("Letter of attorney (its text)").fill(letter);
  await page.getByRole("button", { name: "Log the request" }).click();
  await page.getByRole("heading", { level: 1, name: /^Request req_/ }).waitFor();
  const id = (await page.getByRole("heading", { level: 1 }).textContent()).replace("Request ", "");
  assert.equal(await fact(page, "Status"), "received");
  assert.equal(await fact(page, "From"), "agent");
  assert.equal(await fact(page, "Agent"), "Kim Agent");
  const sha = createHash("sha256").update(letter).digest("hex");
  assert.equal(await fact(page, "Letter of attorney"), `text/plain (SHA-256 ${sha})`);
  await page.screenshot({ path: `${output}staff-request.png`, fullPage: true });

  // --- verify, fulfil, read the answer ----------------------------------------------
  await page.getByRole("button", { name: "Verify the requester" }).click();
  await page.getByRole("button", { name: "Fulfil the request" }).waitFor();
  assert.equal(await fact(page, "Status"), "verified");
  assert.equal(await fact(page, "Verified"), "staff");
  await page.getByRole("button", { name: "Fulfil the request" }).click();
  await page.getByRole("link", { name: "Open the answer" }).waitFor();
  assert.equal(await fact(page, "Status"), "fulfilled");
  assert.ok((await page.locator("#timeline tbody tr").count()) >= 3, "filed, verified, fulfilled");
  await page.getByRole("link", { name: "Open the answer" }).click();
  await page.getByRole("heading", { level: 1, name: /request/ }).waitFor();
  assert.ok((await page.getByText(memberEmail, { exact: true }).count()) >= 1, "the answer holds the member's e-mail");

  // --- the queue -------------------------------------------------------------------
  await page.goto(`${site}/staff/requests`);
  const row = page.locator(`#queue tr[data-id="${id}"]`);
  const cells = await row.locator("td").allTextContents();
  assert.deepEqual(cells.slice(0, 4), [id, "access", "agent", "fulfilled"]);
  assert.match(cells[5], /^\d{4}-\d{2}-\d{2}$/, `the answer date: ${cells[5]}`);
  await page.screenshot({ path: `${output}staff-queue.png`, fullPage: true });

  // --- members, policy, audit log ------------------------------------------------------
  await page.getByRole("link", { name: "Members" }).click();
  assert.equal(await page.locator("#members tbody tr").filter({ hasText: member }).count(), 1);
  await page.getByRole("link", { name: "Policy and notices" }).click();
  await page.getByText("version 2023-02-21").first().waitFor();
  await page.getByRole("link", { name: "Audit log" }).click();
  assert.equal(await page.locator("#checkpoint .status").textContent(), "valid");
  const held = Number(await page.locator("#checkpoint tr").first().locator("td").textContent());
  // The platform signs a newer checkpoint (its schedule does every minute).
  const issued = await fetch(`${site}/v1/audit/checkpoint`, {
    method: "POST",
    headers: { authorization: `Bearer ${platformKey}` }
  });
  assert.equal(issued.status, 200);
  const newest = (await issued.json()).size;
  assert.ok(newest > held, "the log grew");
  await page.getByRole("button", { name: "Verify the newest checkpoint against this one" }).click();
  assert.equal(await page.locator("#verified").textContent(),
    `Verified. Signature valid; consistent: the log of ${newest} entries holds the ${held} of the checkpoint you held, unchanged.`);
  // A root that is not the one signed at that size: not consistent.
  await page.goto(`${site}/staff/audit`);
  await page.locator("input[name=root]").evaluate((e) => { e.value = "00".repeat(32); });
  await page.getByRole("button", { name: "Verify the newest checkpoint against this one" }).click();
  assert.match(await page.locator("#verified").textContent(), /^Not consistent/);
  await page.screenshot({ path: `${output}staff-audit.png`, fullPage: true });

  // --- sign out ---------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { level: 1, name: "Staff sign-in" }).waitFor();
  await page.goto(`${site}/staff/requests`);
  await page.getByRole("heading", { level: 1, name: "Staff sign-in" }).waitFor();
  // The refused login (401) is the only error.
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  await context.close();
});
