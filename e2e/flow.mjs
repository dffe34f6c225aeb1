// The vendor-onboarding flow in real headless Chromium, checking what a
// person sees (text, visibility, focus), and taking screenshots of the main
// pages. Usage: node flow.mjs BASE_URL OUT_DIR ADMIN_ONE_TIME_PASSWORD
// Writes OUT_DIR/run-pack.zip and OUT_DIR/verifier-key.txt for `attest verify`,
// and OUT_DIR/screenshots/*.png.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [base, outDir, adminOtp] = process.argv.slice(2);
if (!base || !outDir || !adminOtp) {
  console.error("usage: node flow.mjs BASE_URL OUT_DIR ADMIN_ONE_TIME_PASSWORD");
  process.exit(2);
}
const shots = join(outDir, "screenshots");
mkdirSync(shots, { recursive: true });

let step = "launch";
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
async function visibleText(page, selector) {
  const el = page.locator(selector).first();
  check(await el.isVisible(), `${selector} is visible`);
  return (await el.innerText()).trim();
}
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}
async function focusedId(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.id);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

async function signInFirstTime(context, email, otp, password) {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  check((await focusedId(page)) === "email", "the email field has focus on the sign-in page");
  await page.fill("#email", email);
  await page.fill("#password", otp);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/account\/password/);
  check((await visibleText(page, "main")).includes("one-time password"), "the password page explains why");
  await page.fill("#current_password", otp);
  await page.fill("#new_password", "short");
  await page.fill("#confirm_password", "short");
  await page.click("main button[type=submit]");
  check((await visibleText(page, "#err-new_password")).includes("12"), "a short password is refused beside the field");
  check((await focusedId(page)) === "new_password", "focus moves to the field with the message");
  await page.fill("#current_password", otp);
  await page.fill("#new_password", password);
  await page.fill("#confirm_password", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(new RegExp(`${base}/\\?ok=password`));
  check((await visibleText(page, ".notice")).includes("Password changed"), "the change is confirmed");
  return page;
}

try {
  const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  step = "sign in";
  {
    const p = await adminCtx.newPage();
    await p.goto(`${base}/runs`);
    check(p.url().includes("/login?next=/runs"), "a stranger is sent to sign in");
    await p.fill("#email", "admin@example.com");
    await p.fill("#password", "not the password");
    await p.click("main button[type=submit]");
    check((await visibleText(p, "#err-password")).includes("wrong"), "a wrong password is said beside the field");
    await shot(p, "01-sign-in-error");
    await p.close();
  }
  const admin = await signInFirstTime(adminCtx, "admin@example.com", adminOtp, "admin's own long password");
  step = "my work";
  await shot(admin, "02-my-work");
  check(await admin.locator("#inbox-count").isVisible(), "the header shows my open-work count");

  step = "start the vendor-onboarding example";
  await admin.click("text=Start a run");
  await admin.selectOption("#template", "vendor-onboarding");
  await admin.fill("#name", "Acme E2E GmbH");
  await shot(admin, "03-start-run");
  await admin.click("main button[type=submit]");
  await admin.waitForURL(/\/runs\/[0-9a-f-]+\?ok=started/);
  const runUrl = admin.url().split("?")[0];
  check((await visibleText(admin, ".notice")).includes("Run started"), "the start is confirmed");
  check((await visibleText(admin, "h1")) === "Acme E2E GmbH", "the run page is titled with the run's name");
  const approvalCard = admin.locator("#task-finance_approval");
  check((await approvalCard.getAttribute("class")).includes("st-hidden"), "the finance approval is hidden at first");
  check((await approvalCard.innerText()).includes("not needed"), "a hidden task says it is not needed");
  check((await visibleText(admin, "#task-security_review")).includes("Security review"), "every task is listed");

  step = "submit with a missing required field";
  await admin.fill("#f-vendor_name", "Acme E2E GmbH");
  await admin.click("#task-request button[value=complete]");
  await admin.waitForLoadState();
  const missing = await visibleText(admin, "#task-request .field-error");
  check(/required|needs a value|missing/i.test(missing), `the engine's message is shown beside the field (${missing})`);
  const errId = await admin.locator("#task-request .field-error").first().getAttribute("id");
  const focused = await focusedId(admin);
  check(errId === `err-${focused.replace(/^f-/, "")}`, `focus is on the field with the message (${focused}, ${errId})`);
  check((await admin.inputValue("#f-vendor_name")) === "Acme E2E GmbH", "what was typed is kept");
  await shot(admin, "04-run-missing-field");

  step = "a conditional task appears";
  await admin.fill("#f-annual_spend", "25000");
  await admin.locator("#f-annual_spend").blur();
  await admin.waitForFunction(() => !document.querySelector("#task-finance_approval").classList.contains("st-hidden"));
  check((await approvalCard.innerText()).includes("needed"), "with JavaScript, the approval shows as needed at once");
  await admin.click("#task-request button[value=save]");
  await admin.waitForURL(/ok=saved/);
  check(!(await approvalCard.getAttribute("class")).includes("st-hidden"), "after saving, the finance approval is part of the run");
  check((await approvalCard.innerText()).includes("finance-approver"), "it says who must act");

  step = "upload the contract";
  const contract = Buffer.from("%PDF-1.4\n% the signed contract of Acme E2E GmbH\n");
  const sha = createHash("sha256").update(contract).digest("hex");
  await admin.setInputFiles("#f-contract", { name: "contract.pdf", mimeType: "application/pdf", buffer: contract });
  await admin.click("form[data-field=contract] button[type=submit]");
  await admin.waitForURL(/ok=uploaded/);
  check((await visibleText(admin, "#task-request .evidence")).includes(sha), "the page shows the file's SHA-256");

  step = "complete the request";
  await admin.click("#task-request button[value=complete]");
  await admin.waitForURL(/ok=completed/);
  check((await visibleText(admin, "#task-request")).includes("Completed by admin@example.com"), "the request shows as done");
  await shot(admin, "05-run-request-done");

  step = "refused a self-approval";
  await admin.fill("#comment-finance_approval", "Looks fine to me");
  await admin.click("#task-finance_approval button[value=approve]");
  await admin.waitForLoadState();
  const sod = await visibleText(admin, "#task-finance_approval .form-error");
  check(sod.toLowerCase().includes("separation of duties"), `the engine's refusal is shown (${sod})`);
  await shot(admin, "06-self-approval-refused");

  step = "give the approver a password";
  await admin.goto(`${base}/admin/people`);
  await admin.click("tr:has-text('fin@example.com') button:has-text('New one-time password')");
  const finOtp = (await visibleText(admin, "#secret-value")).trim();
  check(finOtp.length >= 12, "the one-time password is shown once");
  await shot(admin, "07-admin-people");
  await admin.goto(`${base}/admin/tokens`);
  await admin.fill("#name", "");
  await admin.click("main button.primary");
  check((await visibleText(admin, "#err-name")).length > 0, "a token without a name is refused beside the field");
  await admin.fill("#name", "ci");
  await admin.selectOption("#access", "member");
  await admin.click("main button.primary");
  check((await visibleText(admin, "#secret-value")).startsWith("attest_"), "a new token is shown once");
  await shot(admin, "08-admin-tokens");

  step = "reject as the approver";
  const finCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const fin = await signInFirstTime(finCtx, "fin@example.com", finOtp, "fin's own long password");
  check((await visibleText(fin, "#h-approvals")).includes("Approvals"), "My work lists approvals");
  check((await visibleText(fin, "#h-approvals + .worklist")).includes("Acme E2E GmbH"), "the approval waits for the approver");
  await shot(fin, "02-my-work-approver");
  await fin.click("a:has-text('Acme E2E GmbH')");
  await fin.waitForURL(/#task-finance_approval/);
  await fin.click("#task-finance_approval button[value=reject]");
  await fin.waitForLoadState();
  check((await visibleText(fin, "#err-comment")).length > 0, "rejecting without a comment is refused beside the comment box");
  check((await focusedId(fin)) === "comment-finance_approval", "focus is on the comment box");
  await fin.fill("#comment-finance_approval", "The annual spend is higher: correct it");
  await fin.click("#task-finance_approval button[value=reject]");
  await fin.waitForURL(/ok=rejected/);
  check((await visibleText(fin, ".notice")).includes("Rejected"), "the rejection is confirmed");

  step = "rework";
  await admin.goto(runUrl);
  check((await visibleText(admin, "#task-request .badge")).includes("rework"), "the request is in rework");
  check((await visibleText(admin, "#task-finance_approval")).includes("The annual spend is higher"), "the rejection comment is shown");
  await admin.fill("#f-annual_spend", "30000");
  await admin.click("#task-request button[value=complete]");
  await admin.waitForURL(/ok=completed/);

  step = "approve";
  await fin.goto(runUrl);
  await fin.fill("#comment-finance_approval", "Approved after correction");
  await fin.click("#task-finance_approval button[value=approve]");
  await fin.waitForURL(/ok=approved/);
  check((await visibleText(fin, "#run-status")) === "completed", "the run is completed");
  await shot(fin, "09-run-completed");

  step = "activity and proofs";
  await admin.goto(runUrl);
  const activity = await visibleText(admin, ".activity");
  check(activity.includes("rejected") && activity.includes("approved"), "the activity feed tells the story");
  await admin.click(".activity a:has-text('proof #')");
  check((await visibleText(admin, "h1")).includes("Inclusion proof"), "an activity entry links to its inclusion proof");
  await shot(admin, "10-inclusion-proof");

  step = "runs list and audit";
  await admin.goto(`${base}/runs?template=vendor-onboarding`);
  check((await visibleText(admin, "table")).includes("Acme E2E GmbH"), "the runs list shows the run");
  await shot(admin, "11-runs-list");
  await admin.goto(`${base}/audit`);
  const key = await visibleText(admin, "#verifier-key");
  writeFileSync(join(outDir, "verifier-key.txt"), key);
  await shot(admin, "12-audit");
  await admin.click("text=Verify now");
  check((await visibleText(admin, "#verify-result")).startsWith("Verified"), "verify now says the ledger verifies");
  await shot(admin, "13-verified");

  step = "download the evidence pack";
  await admin.goto(runUrl);
  const [download] = await Promise.all([admin.waitForEvent("download"), admin.click("#download-pack")]);
  await download.saveAs(join(outDir, "run-pack.zip"));

  step = "schedules, webhooks and a trigger URL";
  await admin.goto(`${base}/schedules`);
  await admin.selectOption("#template", "vendor-onboarding");
  await admin.fill("#name_pattern", "Vendor review {quarter} {year}");
  await admin.selectOption("#kind", "quarterly");
  await admin.fill("#due_days", "10");
  await admin.click("main form[action='/schedules'] button.primary");
  check((await visibleText(admin, ".notice")).includes("Schedule created"), "a schedule is created from the form");
  check((await visibleText(admin, "table")).includes("due 10 days after start"), "the list shows the due period");
  await shot(admin, "15-schedules");
  await admin.goto(`${base}/admin/webhooks`);
  await admin.fill("#url", "http://127.0.0.1:9/e2e");
  await admin.check("input[name=event_types][value=run_completed]");
  await admin.click("main form[action='/admin/webhooks'] button.primary");
  check((await visibleText(admin, "#secret-value")).startsWith("whsec_"), "the signing secret is shown once");
  await shot(admin, "16-webhooks");
  await admin.goto(`${base}/templates/vendor-onboarding/trigger`);
  await admin.click("main form[action='/templates/vendor-onboarding/trigger'] button.primary");
  const triggerUrl = await visibleText(admin, "#secret-value");
  check(triggerUrl.startsWith("/hooks/triggers/vendor-onboarding/"), "the secret trigger URL is shown once");
  await shot(admin, "17-trigger-url");

  step = "phone";
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const phonePage = await phone.newPage();
  await phonePage.goto(`${base}/login`);
  await phonePage.fill("#email", "fin@example.com");
  await phonePage.fill("#password", "fin's own long password");
  await phonePage.click("main button[type=submit]");
  await phonePage.waitForURL(`${base}/`);
  await phonePage.goto(runUrl);
  await shot(phonePage, "14-run-on-a-phone");
  await phonePage.click("button:has-text('Sign out')");
  await phonePage.waitForURL(/signed-out/);
  check((await visibleText(phonePage, ".notice")).includes("signed out"), "signing out is confirmed");

  await browser.close();
  console.log("e2e: the vendor-onboarding flow passed");
} catch (e) {
  console.error(`e2e failed at step '${step}': ${e.message}`);
  await browser.close();
  process.exit(1);
}
