// The staff console (/staff), end to end in chromium: an agent files a
// request on the public form with a letter of attorney as a PDF file; a
// privacy officer downloads the letter, verifies the request and fulfils
// it; logs another agent's request with a scanned letter; reads a member
// for a purpose; logs a complaint; looks at processors and the register.
//
// Asserts:
// - the agent's form takes the letter as a file and answers "received";
// - sign-in needs the password and the second factor: a wrong code is
//   refused (401, announced as an alert), the right one opens the queue;
//   the session cookie is HttpOnly and SameSite=Strict;
// - the queue holds the agent's request, received, from an agent; its page
//   shows the agent's name and the SHA-256 of the letter, and the letter
//   downloads with exactly the bytes uploaded;
// - "Verify the requester" makes it verified, "Fulfil the request"
//   fulfilled, and the answer holds the member's e-mail address;
// - the queue lists it with its status and answer date;
// - logging an agent's request with a PNG scan records the PNG's SHA-256;
// - the members page links to the member; read for "Member management" it
//   shows their e-mail address;
// - a complaint logged at the inquiry point is listed with the day it is
//   destroyed (three years on);
// - the processing page lists the policy's processors and the register;
// - each page shot, the agent's form and the complaint form break no WCAG
//   2.1 A or AA rule axe-core checks;
// - the policy page names the version
//   in force; on the audit log page the checkpoint shown is verified
//   against a newer one the platform signed (signature and consistency
//   proof), and a forged root for the same size is found not consistent;
// - signing out ends the session: the queue sends back to sign-in.
import { createHash } from "node:crypto";
import { assert, assertAccessible, base, output, run, watchErrors } from "./lib.mjs";

const site = base("CUSTOS_URL");
const email = base("STAFF_EMAIL");
const password = base("STAFF_PASSWORD");
const code = base("STAFF_CODE");
const member = base("MEMBER_ID");
const platformKey = base("PLATFORM_KEY");
const memberEmail = base("MEMBER_EMAIL");
// A small but real PDF: the letter of attorney the agent uploads.
const letter = Buffer.from(
  "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n" +
  "% I, Kim Minji, authorise Kim Agent to ask for a copy of my personal information.\ntrailer << /Root 1 0 R >>\n%%EOF\n",
  "latin1"
);
// A scanned letter: a PNG's signature and header.
const scan = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

async function fact(page, name) {
  return (await page.locator("#facts tr").filter({ has: page.getByRole("rowheader", { name, exact: true }) })
    .locator("td").textContent()).trim();
}

await run("staff console", async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  watchErrors(page, errors);

  // --- an agent files on the public form ---------------------------------------------
  await page.goto(`${site}/privacy/agent`);
  await page.getByLabel("The member's e-mail address").fill(memberEmail);
  await page.getByLabel("What the member asks for").selectOption("access");
  await page.getByLabel("Your name").fill("Kim Agent");
  await page.getByLabel("How to reach you").fill("agent@example.com");
  await page.getByLabel("The letter of attorney").setInputFiles({ name: "letter.pdf", mimeType: "application/pdf", buffer: letter });
  await assertAccessible(page, "agent form");
  await page.getByRole("button", { name: "File the request" }).click();
  assert.match(await page.getByRole("status").textContent(), /^Received/);

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

  // --- the agent's request: its letter checked --------------------------------------
  const filed = page.locator("#queue tbody tr");
  assert.equal(await filed.count(), 1, "the agent's request is in the queue");
  assert.deepEqual((await filed.locator("td").allTextContents()).slice(1, 4), ["access", "agent", "received"]);
  await filed.getByRole("link").click();
  await page.getByRole("heading", { level: 1, name: /^Request req_/ }).waitFor();
  const id = (await page.getByRole("heading", { level: 1 }).textContent()).replace("Request ", "");
  assert.equal(await fact(page, "Status"), "received");
  assert.equal(await fact(page, "From"), "agent");
  assert.equal(await fact(page, "Agent"), "Kim Agent");
  assert.equal(await fact(page, "Letter of attorney"), `Download the letter (application/pdf, SHA-256 ${sha256(letter)})`);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download the letter" }).click()
  ]);
  assert.equal(download.suggestedFilename(), `letter-${id}.pdf`);
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  assert.equal(sha256(Buffer.concat(chunks)), sha256(letter), "the letter as the agent uploaded it");
  await page.screenshot({ path: `${output}staff-request.png`, fullPage: true });
  await assertAccessible(page, "staff-request");

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
  await assertAccessible(page, "staff-queue");

  // --- an agent's request by post, logged with a scan -----------------------------
  await page.getByRole("link", { name: "Log a request" }).click();
  await page.getByLabel("Member id").fill(member);
  await page.getByLabel("Kind").selectOption("deletion");
  await page.getByLabel("Received by").selectOption("writing");
  await page.getByLabel("Agent's name").fill("Lee Lawyer");
  await page.getByLabel("Agent's contact").fill("lawyer@example.com");
  await page.getByLabel("Letter of attorney").setInputFiles({ name: "scan.png", mimeType: "image/png", buffer: scan });
  await page.getByRole("button", { name: "Log the request" }).click();
  await page.getByRole("heading", { level: 1, name: /^Request req_/ }).waitFor();
  assert.equal(await fact(page, "Letter of attorney"), `Download the letter (image/png, SHA-256 ${sha256(scan)})`);

  // --- a member, read for a purpose ---------------------------------------------------
  await page.getByRole("link", { name: "Members", exact: true }).click();
  assert.equal(await page.locator("#members tbody tr").filter({ hasText: member }).count(), 1);
  await page.getByRole("link", { name: member }).click();
  await page.getByLabel("Read for the purpose").selectOption({ label: "Member management" });
  await page.getByRole("button", { name: "Read" }).click();
  await page.locator("#member").waitFor();
  assert.ok((await page.locator("#member").getByText(memberEmail, { exact: true }).count()) === 1, "the member's e-mail");
  await page.screenshot({ path: `${output}staff-member.png`, fullPage: true });
  await assertAccessible(page, "staff-member");

  // --- a complaint, logged and listed -------------------------------------------------
  await page.getByRole("link", { name: "Complaints" }).click();
  await page.getByLabel("Log one received at").selectOption("business_operator_service_inquiry");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel("Kind").selectOption("complaint");
  await page.getByLabel("Member id (if it comes from a member)").fill(member);
  await page.getByLabel("Name", { exact: true }).fill("Kim Minji");
  await page.getByLabel("Name of the company", { exact: true }).fill("Minji Co.");
  await page.getByLabel("E-mail address", { exact: true }).fill(memberEmail);
  await page.getByLabel(/body of the inquiry/).fill("I was charged twice for invoice 42.");
  await assertAccessible(page, "complaint form");
  await page.getByRole("button", { name: "Log it" }).click();
  await page.getByRole("heading", { level: 1, name: /^Request req_/ }).waitFor();
  const complaint = (await page.getByRole("heading", { level: 1 }).textContent()).replace("Request ", "");
  await page.getByRole("link", { name: "Complaints" }).click();
  const listed = await page.locator(`#complaints tr[data-id="${complaint}"] td`).allTextContents();
  assert.equal(listed[1], "complaint");
  assert.match(listed[5], /^\d{4}-\d{2}-\d{2}$/, "the day it is destroyed");
  assert.equal(Number(listed[5].slice(0, 4)) - Number(listed[4].slice(0, 4)), 3, "three years on");
  await page.screenshot({ path: `${output}staff-complaints.png`, fullPage: true });
  await assertAccessible(page, "staff-complaints");

  // --- processors, transfers, the register ---------------------------------------------
  await page.getByRole("link", { name: "Processors and provisions" }).click();
  assert.ok((await page.locator("#processors tbody tr").count()) >= 1, "the policy's processors");
  await page.getByRole("heading", { name: "Register of hand-overs" }).waitFor();
  assert.ok((await page.locator("#transfers tbody tr").count()) >= 1, "the policy's transfers abroad");
  await page.screenshot({ path: `${output}staff-processing.png`, fullPage: true });
  await assertAccessible(page, "staff-processing");

  // --- policy, audit log ------------------------------------------------------------
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
  await assertAccessible(page, "staff-audit");

  // --- sign out ---------------------------------------------------------------------
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { level: 1, name: "Staff sign-in" }).waitFor();
  await page.goto(`${site}/staff/requests`);
  await page.getByRole("heading", { level: 1, name: "Staff sign-in" }).waitFor();
  // The refused login (401) is the only error.
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  await context.close();
});
