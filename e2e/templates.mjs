// The template pages and the editor in real headless Chromium, after flow.mjs
// has set the admin's password: the list, a template page with its diagram,
// the editor with a validator message and a refused input beside their
// fields, publishing, the version diff and the YAML view, on a laptop and a
// phone. Usage: node templates.mjs BASE_URL OUT_DIR
// Writes OUT_DIR/screenshots/2*.png.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error("usage: node templates.mjs BASE_URL OUT_DIR");
  process.exit(2);
}
const shots = join(outDir, "screenshots");
mkdirSync(shots, { recursive: true });
const adminPassword = "admin's own long password";

let step = "launch";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
async function visibleText(page, selector) {
  const el = page.locator(selector).first();
  check(await el.isVisible(), `${selector} is visible`);
  return (await el.innerText()).trim();
}
async function shot(page, name, full = true) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: full });
}
// Unfolds a task of the editor the way a person does: by its summary.
async function openTask(page, i) {
  const details = page.locator(`#task-${i} > details`);
  if ((await details.getAttribute("open")) === null) await page.click(`#task-${i} > details > summary`);
}
async function signIn(context) {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.fill("#email", "admin@example.com");
  await page.fill("#password", adminPassword);
  await page.click("main button[type=submit]");
  await page.waitForURL(`${base}/`);
  return page;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

try {
  const laptop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await signIn(laptop);

  step = "templates list";
  await p.click("nav >> text=Templates");
  await p.waitForURL(`${base}/templates`);
  const list = await visibleText(p, "table.templates");
  check(list.includes("Vendor onboarding") && list.includes("POL-007"), "the list names templates and their policy");
  await shot(p, "20-templates-list");

  step = "template page";
  await p.click("a:has-text('Employee onboarding')");
  await p.waitForURL(/\/templates\/employee-onboarding$/);
  check(await p.locator("#diagram svg[role=img]").isVisible(), "the diagram is drawn");
  check((await p.locator("#diagram svg .node").count()) === 10, "one box per task");
  check((await p.locator("#diagram svg .approves-edge").count()) >= 2, "approvals point at what they approve");
  await shot(p, "21-template-page", false);
  await p.locator("#checklist").scrollIntoViewIfNeeded();
  await shot(p, "21b-template-checklist", false);
  // A box of the diagram is a link to its task in the checklist, reachable by keyboard.
  await p.locator("#diagram svg a").first().focus();
  await p.keyboard.press("Enter");
  await p.waitForURL(/#task-/);

  step = "editor";
  await p.click("button:has-text('Edit as a new draft')");
  await p.waitForURL(/\/drafts\/[0-9a-f-]+$/);
  check((await visibleText(p, "h1")).startsWith("Draft:"), "the editor opens");
  await shot(p, "22-editor", false);

  step = "validate shows the validator's message beside the item";
  await openTask(p, 1);
  await p.fill("#in-tasks-1-assignee", "role:nobody");
  await p.click(".toolbar button[value=validate]");
  await p.waitForURL(/check=1/);
  const summary = await visibleText(p, "#check-summary");
  const errors = await p.locator(".field-error").evaluateAll((els) => els.map((e) => `${e.parentElement.id}: ${e.innerText}`));
  check(summary.includes("1 problem"), `the summary counts the problems (${summary}; ${errors.join(" | ")})`);
  check(errors.some((e) => e.startsWith("in-tasks-1-assignee-err") && e.includes("not declared")),
    `the message is beside the assignee (${errors.join(" | ")})`);
  check(await p.evaluate(() => document.activeElement && document.activeElement.id === "in-tasks-1-assignee"),
    "focus is on the input with the message");
  await p.locator("#task-1").scrollIntoViewIfNeeded();
  await shot(p, "23-editor-validation-error", false);

  step = "a word where a number goes is refused beside the field";
  await p.fill("#in-tasks-1-assignee", "role:hr");
  await openTask(p, 0);
  await p.fill("#in-tasks-0-fields-0-label", "Full legal name (as on the passport)");
  const lengthName = "tasks[0].fields[0].max_length";
  const lengthInput = p.locator(`input[name='${lengthName}']`);
  await lengthInput.fill("lots");
  await p.click(".toolbar button[value=save]");
  await p.waitForLoadState();
  const errId = `#${(await lengthInput.getAttribute("id"))}-err`;
  check((await visibleText(p, errId)).length > 0, `the refusal is beside ${lengthName}`);
  check((await visibleText(p, ".form-error")).includes("not saved"), "the page says nothing was saved");
  await p.locator(errId).scrollIntoViewIfNeeded();
  await shot(p, "24-editor-bad-input", false);
  await p.fill(`input[name='${lengthName}']`, "120");

  step = "publish";
  await p.click(".toolbar button[value=publish]");
  await p.waitForURL(/\/templates\/employee-onboarding\?ok=published/);
  check((await visibleText(p, ".notice")).includes("Published"), "publishing is confirmed");
  check((await visibleText(p, "h1")).includes("v2"), "the new version is shown");

  step = "diff";
  await p.click("a:has-text('changes from v1')");
  await p.waitForURL(/\/diff\?from=1&to=2/);
  const changes = await visibleText(p, "table.changes");
  check(changes.includes("assignee") && changes.includes("role:hr"), "the diff names the change");
  await shot(p, "25-version-diff");

  step = "yaml view";
  await p.goto(`${base}/templates/vendor-onboarding`);
  await p.click("button:has-text('Edit as a new draft')");
  await p.waitForURL(/\/drafts\/[0-9a-f-]+$/);
  await p.click("nav.tabs >> text=YAML");
  const yaml = await p.inputValue("#source");
  check(yaml.includes("  stop: true\n"), "the request is a stop task");
  await p.fill("#source", yaml.replace("  stop: true\n", "  stop: maybe\n"));
  await p.click("button[value=save]");
  await p.waitForLoadState();
  check((await visibleText(p, "#source-err")).startsWith("Line"), "a YAML problem is named with its line");
  const selected = await p.evaluate(() => {
    const t = document.getElementById("source");
    return document.activeElement === t ? t.value.slice(t.selectionStart, t.selectionEnd) : null;
  });
  check(selected && selected.trim() === "stop: maybe", `the cursor is on the line the message names (${selected})`);
  await shot(p, "26-yaml-error", false);

  step = "phone";
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const q = await signIn(phone);
  await q.goto(`${base}/templates/vendor-onboarding`);
  await shot(q, "27-template-on-a-phone");
  await q.goto(`${base}/templates`);
  await q.click("a:has-text('Vendor onboarding') >> nth=-1");
  await q.waitForURL(/\/drafts\/[0-9a-f-]+$/);
  await shot(q, "28-editor-on-a-phone", false);

  await browser.close();
  console.log("e2e: the template pages passed");
} catch (e) {
  console.error(`e2e templates failed at step '${step}': ${e.message}`);
  await browser.close();
  process.exit(1);
}
