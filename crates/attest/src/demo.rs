//! `attest demo`: a short guided tour on a fresh data directory.

use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Error, Workspace};
use attest_engine::{Command, Values};
use attest_template::SourceFormat;
use serde_json::Value;

use crate::commands::now;
use crate::output::CliError;

fn step(title: &str) {
    println!("\n== {title}");
}

fn values(pairs: &[(&str, Value)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Runs the tour, printing each step and each refusal the rules produce.
pub fn run(dir: &DataDir) -> Result<(), CliError> {
    let now = now()?;
    let fresh = !dir.exists();
    if fresh {
        init_data_dir(dir, "Demo workspace", "admin@example.com", "Ada Admin", now)?;
    }
    let ws = Workspace::open(dir)?;
    step("Workspace");
    println!("data directory: {}", dir.root().display());
    let operator = attest_engine::Actor {
        kind: attest_engine::ActorKind::System,
        id: "demo".into(),
        roles: Default::default(),
        admin: true,
    };
    if fresh {
        for (email, name, roles) in [
            ("rita@example.com", "Rita Requester", &["requester"][..]),
            ("sam@example.com", "Sam Security", &["security"][..]),
            ("pat@example.com", "Pat Procurement", &["procurement-lead"][..]),
            ("fin@example.com", "Fin Approver", &["finance-approver"][..]),
        ] {
            ws.add_user(&operator, email, name, false, now)?;
            for r in roles {
                ws.grant_role(&operator, email, r, now)?;
            }
            println!("person {email} ({})", roles.join(", "));
        }
    }
    step("Design: publish the example templates");
    for (file, source) in attest_core::seed::EXAMPLES {
        let t = Workspace::validate(source, SourceFormat::Yaml, Some(file))?;
        let out = ws.publish(&operator, t, now)?;
        println!("{file}: {} v{}{}", out.key, out.version, if out.unchanged { " (unchanged)" } else { "" });
    }
    step("Execute: Rita starts a vendor onboarding run");
    let rita = ws.person("rita@example.com")?;
    let run = ws.start_run(&rita, "vendor-onboarding", Some("Acme Analytics GmbH"), now)?;
    println!("run {}", run.run_id);
    let try_cmd = |label: &str, cmd: Command, who: &attest_engine::Actor| -> Result<(), CliError> {
        match ws.execute(&run.run_id, &cmd, who, now) {
            Ok(_) => println!("ok: {label}"),
            Err(Error::Refused(r)) => println!("refused ({label}): {} [rule {}]", r.message, r.rule.name()),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    };
    step("Enforce: completing the request without the required fields");
    try_cmd("complete request", Command::Complete { task: "request".into(), values: Values::new() }, &rita)?;
    step("Enforce: a wrong value type");
    try_cmd(
        "annual_spend = lots",
        Command::SetFields { task: "request".into(), values: values(&[("annual_spend", Value::from("lots"))]) },
        &rita,
    )?;
    step("Work: Rita fills in the request and attaches the contract");
    try_cmd(
        "set request fields",
        Command::SetFields {
            task: "request".into(),
            values: values(&[
                ("vendor_name", Value::from("Acme Analytics GmbH")),
                ("annual_spend", Value::from("25000")),
                ("personal_data", Value::from("yes")),
            ]),
        },
        &rita,
    )?;
    let contract = b"%PDF-1.4 demo contract\n";
    ws.attach(&run.run_id, "request", Some("contract"), "contract.pdf", &mut &contract[..], &rita, now)?;
    println!("ok: attached contract.pdf");
    try_cmd("complete request", Command::Complete { task: "request".into(), values: Values::new() }, &rita)?;
    println!("Because the vendor handles personal data, the security review is now visible.");
    let sam = ws.person("sam@example.com")?;
    step("Enforce: Rita may not do the security review");
    try_cmd(
        "complete security_review",
        Command::Complete { task: "security_review".into(), values: Values::new() },
        &rita,
    )?;
    step("Work: Sam reviews security");
    let report = b"%PDF-1.4 security assessment\n";
    ws.attach(&run.run_id, "security_review", Some("report"), "assessment.pdf", &mut &report[..], &sam, now)?;
    try_cmd(
        "complete security_review",
        Command::Complete { task: "security_review".into(), values: values(&[("risk", Value::from("medium"))]) },
        &sam,
    )?;
    step("Approve: the spend is over 10,000, so finance approval appears");
    let fin = ws.person("fin@example.com")?;
    try_cmd(
        "reject finance_approval",
        Command::Reject { task: "finance_approval".into(), comment: "Attach the DPA as well".into() },
        &fin,
    )?;
    println!("The request and the security review went back for rework, with their values kept.");
    step("Enforce: Fin cannot approve before the rework is done");
    try_cmd("approve finance_approval", Command::Approve { task: "finance_approval".into(), comment: None }, &fin)?;
    step("Rework: Rita and Sam complete their tasks again");
    try_cmd("complete request again", Command::Complete { task: "request".into(), values: Values::new() }, &rita)?;
    try_cmd(
        "complete security_review again",
        Command::Complete { task: "security_review".into(), values: Values::new() },
        &sam,
    )?;
    step("Approve: Fin approves the reworked request");
    try_cmd(
        "approve finance_approval",
        Command::Approve { task: "finance_approval".into(), comment: Some("OK".into()) },
        &fin,
    )?;
    let row = ws.run(&run.run_id)?;
    step("Result");
    println!("run status: {} after {} events, {} rework", row.status.as_str(), row.version, row.state.rework_count);
    ws.replay(&run.run_id)?;
    println!("replaying the stored events gives the stored state: yes");
    println!("\nSee it all: attest --data {} run show {}", dir.root().display(), run.run_id);
    Ok(())
}
