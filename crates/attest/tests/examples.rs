//! The five example templates of the repository, each driven end to end
//! through the binary: people with the roles the template needs, publish,
//! start, fill fields (`FIELD=VALUE` and `FIELD:=JSON`), attach evidence,
//! at least one rejection and rework, approval, a completed run, and finally
//! `run replay` and `audit verify`.

mod common;

use std::path::Path;

use common::*;

fn complete(ws: &Ws, run: &str, task: &str, who: &str, values: &[&str]) -> serde_json::Value {
    let mut args = vec!["task", "complete", run, task, "--as", who];
    args.extend_from_slice(values);
    ws.json(&args)
}

fn approve(ws: &Ws, run: &str, task: &str, who: &str) {
    ws.json(&["task", "approve", run, task, "--as", who, "--comment", "Looks right"]);
}

fn reject(ws: &Ws, run: &str, task: &str, who: &str, comment: &str) -> Vec<String> {
    ws.json(&["task", "reject", run, task, "--as", who, "--comment", comment]);
    let show = ws.show(run);
    let rejected = events(&show, "task_rejected", Some(task));
    let last = rejected.last().expect("a rejection event");
    last["reopened"].as_array().expect("reopened").iter().map(|v| v.as_str().expect("task key").to_string()).collect()
}

fn publish_example(ws: &Ws, path: &str, key: &str) {
    let v = ws.json(&["template", "validate", path]);
    assert_eq!(v["valid"], true);
    let p = ws.publish(Path::new(path));
    assert_eq!(p["key"], key);
    assert_eq!(p["version"], 1);
    assert_eq!(p["unchanged"], false);
}

/// The run is completed, every visible task is done and the ledger verifies.
fn assert_completed(ws: &Ws, run: &str, reworks: u64) {
    let show = ws.show(run);
    assert_eq!(show["status"], "completed", "{show}");
    assert_eq!(show["rework_count"], reworks, "{show}");
    for t in show["tasks"].as_array().expect("tasks") {
        assert!(t["status"] == "done" || t["status"] == "hidden", "task {} is {}", t["key"], t["status"]);
    }
    assert_eq!(events(&show, "run_completed", None).len(), 1);
    ws.assert_replay_and_verify(&[run]);
}

// ----- vendor onboarding, with the inbox at every step -----

const RITA: &str = "rita@example.com";
const SAM: &str = "sam@example.com";
const PAT: &str = "pat@example.com";
const FIN: &str = "fin@example.com";

fn vendor_ws() -> Ws {
    let ws = Ws::new();
    ws.user(RITA, &["requester"]);
    ws.user(SAM, &["security"]);
    ws.user(PAT, &["procurement-lead"]);
    ws.user(FIN, &["finance-approver"]);
    publish_example(&ws, example!("vendor-onboarding"), "vendor-onboarding");
    ws
}

#[test]
fn vendor_onboarding_end_to_end_with_inboxes() {
    let ws = vendor_ws();
    let run = ws.start("vendor-onboarding", RITA);
    let inboxes = |expected: [&[&str]; 4]| {
        for (who, want) in [RITA, SAM, PAT, FIN].into_iter().zip(expected) {
            assert_eq!(ws.inbox_tasks(who, &run), want, "inbox of {who}");
        }
    };
    inboxes([&["request"], &[], &[], &[]]);

    ws.json(&[
        "task",
        "set",
        &run,
        "request",
        "--as",
        RITA,
        "vendor_name=Acme GmbH",
        "vendor_website=https://acme.example",
        "annual_spend:=25000",
        "personal_data=true",
    ]);
    // Personal data and the spend make the review and the approval appear:
    // their assignees see them at once, marked as waiting in `run show`.
    let show = ws.show(&run);
    assert_eq!(task_status(&show, "security_review"), "open");
    assert_eq!(task(&show, "security_review")["waits_for"], "request");
    assert_eq!(task_status(&show, "finance_approval"), "open");
    inboxes([&["request"], &["security_review"], &[], &["finance_approval"]]);
    let attached = ws.attach(&run, "request", "contract", "contract.pdf", RITA);
    assert_eq!(attached["sha256"].as_str().map(str::len), Some(64));
    complete(&ws, &run, "request", RITA, &[]);
    inboxes([&[], &["security_review"], &[], &["finance_approval"]]);

    ws.attach(&run, "security_review", "report", "assessment.pdf", SAM);
    complete(&ws, &run, "security_review", SAM, &["risk=high"]);
    inboxes([&[], &[], &[], &["finance_approval"]]);

    let reopened = reject(&ws, &run, "finance_approval", FIN, "The contract is unsigned");
    assert_eq!(reopened, ["request", "security_review"]);
    let show = ws.show(&run);
    assert_eq!(show["rework_count"], 1);
    assert_eq!(task_status(&show, "request"), "rework");
    assert_eq!(show["values"]["vendor_name"], "Acme GmbH", "values are kept for rework");
    inboxes([&["request"], &["security_review"], &[], &["finance_approval"]]);

    // Rework: a new contract, then both tasks again.
    ws.attach(&run, "request", "contract", "contract-signed.pdf", RITA);
    complete(&ws, &run, "request", RITA, &[]);
    inboxes([&[], &["security_review"], &[], &["finance_approval"]]);
    complete(&ws, &run, "security_review", SAM, &[]);
    inboxes([&[], &[], &[], &["finance_approval"]]);
    approve(&ws, &run, "finance_approval", FIN);
    inboxes([&[], &[], &[], &[]]);
    assert_completed(&ws, &run, 1);
    assert_eq!(ws.show(&run)["values"]["contract"]["name"], "contract-signed.pdf");
}

#[test]
fn vendor_onboarding_inbox_lists_overdue_first() {
    let ws = vendor_ws();
    let fill = |run: &str| {
        ws.attach(run, "request", "contract", "contract.pdf", RITA);
        complete(&ws, run, "request", RITA, &["vendor_name=V", "annual_spend=50", "personal_data=true"]);
    };
    // Run `later` starts first, but its request is completed two days after
    // `sooner`'s, so its security review falls due later.
    let later = ws.start("vendor-onboarding", RITA);
    let sooner = ws.start("vendor-onboarding", RITA);
    let no_due = ws.start("vendor-onboarding", RITA);
    ws.json(&["task", "set", &no_due, "request", "--as", RITA, "personal_data=true"]);
    fill(&sooner); // Monday 2025-03-03 09:00: due Thursday 2025-03-06 09:00 (3 business days)
    ws.set_now("2025-03-05T09:00:00Z");
    fill(&later); // due Monday 2025-03-10 09:00

    // Before either is due: nothing overdue, earliest due first, no due date
    // last (`no_due`'s review waits for its request).
    let inbox = ws.inbox(SAM);
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert_eq!(inbox[0], (sooner.clone(), "security_review".to_string(), false));
    assert_eq!(inbox[1], (later.clone(), "security_review".to_string(), false));
    assert_eq!(inbox[2], (no_due.clone(), "security_review".to_string(), false));
    assert_eq!(ws.inbox(RITA), [(no_due.clone(), "request".to_string(), false)]);

    // Past the first due date only.
    ws.set_now("2025-03-06T12:00:00Z");
    let inbox = ws.inbox(SAM);
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert_eq!(inbox[0], (sooner.clone(), "security_review".to_string(), true), "overdue first");
    assert_eq!(inbox[1], (later.clone(), "security_review".to_string(), false));
    assert_eq!(inbox[2], (no_due.clone(), "security_review".to_string(), false));
    let text = ws.cmd(&["inbox", "--as", SAM]).ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines[0].contains(&sooner) && lines[0].contains("OVERDUE"), "{}", text.stdout);
    assert!(lines[1].contains(&later) && !lines[1].contains("OVERDUE"), "{}", text.stdout);
    let show = ws.show(&sooner);
    assert_eq!(task(&show, "security_review")["overdue"], true);
    assert_eq!(task(&show, "security_review")["due_at"], "2025-03-06T09:00:00Z");

    // Past both.
    ws.set_now("2025-03-10T10:00:00Z");
    let inbox = ws.inbox(SAM);
    assert_eq!(inbox.iter().filter(|i| i.2).count(), 2, "{inbox:?}");
    assert_eq!(inbox[0].0, sooner, "the longest overdue first");
    assert_eq!(inbox[1].0, later);
    assert_eq!(inbox[2], (no_due, "security_review".to_string(), false));
}

// ----- employee onboarding -----

#[test]
fn employee_onboarding_end_to_end() {
    let ws = Ws::new();
    let (hm, hr_lead, hr, it, sec, payroll, mgr) = (
        "hm@example.com",
        "lead@example.com",
        "hr@example.com",
        "it@example.com",
        "sec@example.com",
        "pay@example.com",
        "mgr@example.com",
    );
    ws.user(hm, &["hiring-manager"]);
    ws.user(hr_lead, &["hr-lead"]);
    ws.user(hr, &["hr"]);
    ws.user(it, &["it"]);
    ws.user(sec, &["security"]);
    ws.user(payroll, &["payroll"]);
    ws.user(mgr, &[]);
    publish_example(&ws, example!("employee-onboarding"), "employee-onboarding");
    let run = ws.start("employee-onboarding", hm);
    let show = ws.show(&run);
    assert_eq!(show["values"]["employment_type"], "full_time", "defaults fill a new run");
    assert_eq!(show["values"]["equipment"], serde_json::json!(["laptop"]));

    complete(
        &ws,
        &run,
        "request",
        hm,
        &[
            "full_name=Jane Doe",
            "personal_email=Jane.Doe@Gmail.com",
            "start_date=2025-03-17",
            "department=engineering",
            "job_title=Engineer",
            "manager:=[\"mgr@example.com\"]",
            "equipment:=[\"laptop\",\"monitor\"]",
            "privileged_access=true",
        ],
    );
    assert_eq!(ws.show(&run)["values"]["personal_email"], "jane.doe@gmail.com");
    // The sign-off is visible from the start, so it is listed (without a due
    // date, after the headcount approval) though it waits for the stop tasks.
    assert_eq!(ws.inbox_tasks(hr_lead, &run), ["headcount_approval", "onboarding_signoff"]);
    assert_eq!(task(&ws.show(&run), "onboarding_signoff")["waits_for"], "headcount_approval");
    assert_eq!(reject(&ws, &run, "headcount_approval", hr_lead, "The title must match the offer letter"), ["request"]);
    assert_eq!(ws.inbox_tasks(hm, &run), ["request"]);
    complete(&ws, &run, "request", hm, &["job_title=Senior Engineer"]);
    approve(&ws, &run, "headcount_approval", hr_lead);

    ws.attach(&run, "background_check", "check_report", "screening.pdf", hr);
    complete(&ws, &run, "background_check", hr, &["check_result=clear"]);
    ws.attach(&run, "contract", "signed_contract", "contract.pdf", hr);
    complete(&ws, &run, "contract", hr, &["nda_included=true", "contract_signed_on=2025-03-05"]);
    complete(
        &ws,
        &run,
        "account_provisioning",
        it,
        &[
            "username=jane.doe",
            "work_email=jane.doe@example.com",
            "groups:=[\"all-staff\",\"engineering\"]",
            "mfa_enrolled=true",
        ],
    );
    assert_eq!(task_status(&ws.show(&run), "privileged_access_approval"), "open");
    approve(&ws, &run, "privileged_access_approval", sec);
    complete(
        &ws,
        &run,
        "equipment_shipping",
        it,
        &["asset_tags=AT-004512, AT-004513", "laptop_serial=SN-1", "shipped_on=2025-03-12"],
    );
    complete(&ws, &run, "payroll_setup", payroll, &["payroll_id=PR123456", "bank_details_verified=true"]);
    // The training is the manager's, chosen in a members field.
    assert_eq!(ws.inbox_tasks(mgr, &run), ["security_training"]);
    ws.attach(&run, "security_training", "training_certificate", "certificate.png", mgr);
    complete(&ws, &run, "security_training", mgr, &["training_completed_on=2025-03-18", "aup_acknowledged=true"]);
    approve(&ws, &run, "onboarding_signoff", hr_lead);
    assert_completed(&ws, &run, 1);
    assert_eq!(ws.show(&run)["values"]["job_title"], "Senior Engineer");
}

// ----- user access review -----

#[test]
fn user_access_review_end_to_end() {
    let ws = Ws::new();
    let (iam, owner, sec, audit, comp) =
        ("iam@example.com", "owner@example.com", "sec@example.com", "audit@example.com", "comp@example.com");
    ws.user(iam, &["iam-admin"]);
    ws.user(owner, &["system-owner"]);
    ws.user(sec, &["security"]);
    ws.user(audit, &["internal-audit"]);
    ws.user(comp, &["compliance"]);
    publish_example(&ws, example!("user-access-review"), "user-access-review");
    let run = ws.start("user-access-review", iam);

    ws.attach(&run, "scope", "access_export", "accounts.csv", iam);
    complete(
        &ws,
        &run,
        "scope",
        iam,
        &[
            "system_name=Payroll",
            "system_tier=tier1",
            "review_quarter=Q1",
            "review_year:=2025",
            "in_sox_scope=true",
            "system_owner:=[\"owner@example.com\"]",
            "export_taken_on=2025-03-03",
            "account_count=42",
        ],
    );
    assert_eq!(ws.inbox_tasks(owner, &run), ["owner_review"]);
    ws.attach(&run, "owner_review", "reviewed_export", "accounts-reviewed.xlsx", owner);
    complete(
        &ws,
        &run,
        "owner_review",
        owner,
        &[
            "all_appropriate=false",
            r#"changes:=[{"account":"bob","action":"remove","reason":"left the company"},{"account":"eve","action":"downgrade"}]"#,
            "attestation=true",
        ],
    );
    let show = ws.show(&run);
    assert_eq!(task_status(&show, "revocation"), "open");
    assert_eq!(show["values"]["changes"].as_array().map(Vec::len), Some(2));

    ws.attach(&run, "revocation", "revocation_evidence", "removal.png", iam);
    complete(&ws, &run, "revocation", iam, &["ticket=IAM-1234", "revoked_on=2025-03-05"]);
    assert_eq!(ws.inbox_tasks(sec, &run), ["revocation_verification"]);
    assert_eq!(reject(&ws, &run, "revocation_verification", sec, "The screenshot does not show eve"), ["revocation"]);
    assert_eq!(ws.inbox_tasks(iam, &run), ["revocation"]);
    ws.attach(&run, "revocation", "revocation_evidence", "removal-2.pdf", iam);
    complete(&ws, &run, "revocation", iam, &[]);
    approve(&ws, &run, "revocation_verification", sec);
    approve(&ws, &run, "sox_signoff", audit);
    complete(
        &ws,
        &run,
        "close_out",
        comp,
        &["summary=Two accounts removed or downgraded; verified.", "next_review_on=2025-06-02"],
    );
    assert_completed(&ws, &run, 1);
}

// ----- invoice approval -----

#[test]
fn invoice_approval_end_to_end() {
    let ws = Ws::new();
    let (ap, ap2, budget, director, treasury) =
        ("ap@example.com", "ap2@example.com", "bud@example.com", "dir@example.com", "tre@example.com");
    ws.user(ap, &["accounts-payable"]);
    ws.user(ap2, &["accounts-payable"]);
    ws.user(budget, &["budget-owner"]);
    ws.user(director, &["finance-director"]);
    ws.user(treasury, &["treasury"]);
    publish_example(&ws, example!("invoice-approval"), "invoice-approval");
    let run = ws.start("invoice-approval", ap);

    ws.attach(&run, "submit", "invoice_file", "invoice.pdf", ap);
    complete(
        &ws,
        &run,
        "submit",
        ap,
        &[
            "supplier=Acme Supplies",
            "invoice_number=INV-2025/001",
            "invoice_date=2025-02-28",
            "payment_due_on=2025-03-30",
            "amount=30000.50",
            "currency=EUR",
            "cost_center=CC-100 Engineering",
            "po_number=PO-123456",
            r#"line_items:=[{"description":"Servers","quantity":2,"unit_price":15000.25}]"#,
        ],
    );
    let show = ws.show(&run);
    assert_eq!(task_status(&show, "director_approval"), "open", "30,000.50 needs the director");
    assert_eq!(task_status(&show, "three_way_match"), "open");
    complete(&ws, &run, "three_way_match", ap2, &["receipt_reference=GR-654321", "variance=0"]);
    assert_eq!(ws.inbox_tasks(budget, &run), ["budget_approval"]);
    assert_eq!(reject(&ws, &run, "budget_approval", budget, "Wrong cost center"), ["submit"]);
    complete(&ws, &run, "submit", ap, &["cost_center=CC-300 Operations"]);
    approve(&ws, &run, "budget_approval", budget);
    approve(&ws, &run, "director_approval", director);
    assert_eq!(ws.status(&run), "open");
    complete(
        &ws,
        &run,
        "payment",
        treasury,
        &["payment_method=wire", "payment_reference=WIRE-0001", "paid_on=2025-03-20"],
    );
    assert_completed(&ws, &run, 1);
    assert_eq!(ws.show(&run)["values"]["cost_center"], "CC-300 Operations");
}

// ----- incident response -----

#[test]
fn incident_response_end_to_end() {
    let ws = Ws::new();
    let (reporter, analyst, ic, dpo, ciso) =
        ("rep@example.com", "ana@example.com", "ic@example.com", "dpo@example.com", "ciso@example.com");
    ws.user(reporter, &[]);
    ws.user(analyst, &["security-analyst"]);
    ws.user(ic, &["incident-commander"]);
    ws.user(dpo, &["dpo"]);
    ws.user(ciso, &["ciso"]);
    publish_example(&ws, example!("incident-response"), "incident-response");
    let run = ws.start("incident-response", reporter);

    complete(
        &ws,
        &run,
        "report",
        reporter,
        &[
            "title=Laptop stolen from a car",
            "detected_at=2025-03-03T08:30:00+01:00",
            "severity=sev2",
            "category=data_breach",
            "details=A laptop holding a customer export was stolen.",
            "personal_data=true",
        ],
    );
    assert_eq!(ws.show(&run)["values"]["detected_at"], "2025-03-03T07:30:00Z", "stored in UTC");
    complete(
        &ws,
        &run,
        "triage",
        analyst,
        &[
            "verdict=confirmed",
            "incident_commander:=[\"ic@example.com\"]",
            "triage_notes=The export holds customer contacts.",
        ],
    );
    let show = ws.show(&run);
    assert_eq!(task_status(&show, "false_positive_review"), "hidden");
    assert_eq!(task_status(&show, "breach_assessment"), "open");
    assert_eq!(ws.inbox_tasks(ic, &run), ["containment", "recovery"]);
    assert_eq!(ws.inbox_tasks(dpo, &run), ["breach_assessment"]);

    ws.attach(&run, "containment", "containment_evidence", "wipe-log.txt", ic);
    complete(
        &ws,
        &run,
        "containment",
        ic,
        &["containment_actions=Remote wipe issued, credentials rotated.", "contained_at=2025-03-03T10:00:00Z"],
    );
    complete(
        &ws,
        &run,
        "breach_assessment",
        dpo,
        &[
            "notifiable=true",
            "data_subjects=120",
            "data_categories:=[\"contact\",\"financial\"]",
            "notified_at=2025-03-04T09:00:00+01:00",
            "authority_reference=DPA-2025-17",
        ],
    );
    complete(
        &ws,
        &run,
        "recovery",
        ic,
        &[
            "root_cause=Unencrypted disk on a laptop left in a car.",
            "recovered_at=2025-03-04T12:00:00Z",
            "systems_restored=true",
        ],
    );
    ws.attach(&run, "postmortem", "postmortem_report", "postmortem.pdf", analyst);
    complete(
        &ws,
        &run,
        "postmortem",
        analyst,
        &[
            "lessons=Disk encryption was not enforced on sales laptops; we now enforce it with MDM.",
            r#"actions:=[{"action":"Enforce disk encryption","owner":"IT","due_on":"2025-04-01"}]"#,
        ],
    );
    assert_eq!(ws.inbox_tasks(ciso, &run), ["closure"]);
    let reopened = reject(&ws, &run, "closure", ciso, "The postmortem needs a timeline");
    assert_eq!(reopened, ["containment", "recovery", "postmortem"]);
    assert_eq!(ws.inbox_tasks(ic, &run), ["containment", "recovery"]);
    complete(&ws, &run, "containment", ic, &[]);
    complete(&ws, &run, "recovery", ic, &[]);
    ws.attach(&run, "postmortem", "postmortem_report", "postmortem-with-timeline.pdf", analyst);
    complete(&ws, &run, "postmortem", analyst, &[]);
    approve(&ws, &run, "closure", ciso);
    assert_completed(&ws, &run, 1);
}
