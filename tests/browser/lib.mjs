// What the browser scripts share: launching Debian's chromium through
// playwright-core, a time limit, and small assertion helpers.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

export { assert };

// Every script ends within this time, or fails.
const LIMIT_MS = 120_000;

export const output = new URL("./output/", import.meta.url).pathname;
mkdirSync(output, { recursive: true });

export function base(name) {
  const url = process.env[name];
  if (!url) throw new Error(`${name} is not set: run the browser tests through cargo (scripts/test)`);
  return url;
}

// Runs `body(browser)` in a fresh headless chromium, closes the browser on
// every path, and sets the exit code.
export async function run(name, body) {
  const timer = setTimeout(() => {
    console.error(`${name}: timed out after ${LIMIT_MS / 1000} s`);
    process.exit(1);
  }, LIMIT_MS);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // The tests run as root in CI containers, where chromium's sandbox
    // cannot start.
    args: ["--no-sandbox"]
  });
  try {
    await body(browser);
    console.log(`${name}: ok`);
  } catch (e) {
    console.error(`${name}: FAILED`);
    console.error(e);
    process.exitCode = 1;
    // Where each open page was, to see what went wrong.
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        const text = await page.locator("body").innerText().catch(() => "");
        console.error(`page ${page.url()}:\n${text.slice(0, 1500)}`);
      }
    }
  } finally {
    await browser.close();
    clearTimeout(timer);
  }
}

// Fails on any error the page reports in its console or throws.
export function watchErrors(page, errors) {
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
}

// The accessibility rules of WCAG 2.1 A and AA that axe-core (pinned in
// package.json) can check on the page as it stands: labels, names, roles,
// contrast, landmarks, headings, language. Throws, listing each rule broken
// and where, when any is.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
export async function assertAccessible(page, label) {
  // Evaluated through the DevTools protocol: the page's own CSP, which
  // allows no inline script, does not apply to it.
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }
    });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  assert.deepEqual(found, [], `${label}: accessibility rules broken`);
}
