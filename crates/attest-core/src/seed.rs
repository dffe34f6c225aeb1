//! A first-start workspace: the example templates published, a few people
//! with roles, and runs in different states. `attest serve` uses it on an
//! empty data directory.

use attest_engine::{Actor, ActorKind, Command, Values};
use attest_template::SourceFormat;
use jiff::Timestamp;
use serde_json::Value;

use crate::datadir::DataDir;
use crate::error::Result;
use crate::workspace::{Workspace, init_data_dir};

/// The example templates, compiled in so seeding needs no files.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("vendor-onboarding.yaml", include_str!("../../../examples/vendor-onboarding.yaml")),
    ("employee-onboarding.yaml", include_str!("../../../examples/employee-onboarding.yaml")),
    ("user-access-review.yaml", include_str!("../../../examples/user-access-review.yaml")),
    ("invoice-approval.yaml", include_str!("../../../examples/invoice-approval.yaml")),
    ("incident-response.yaml", include_str!("../../../examples/incident-response.yaml")),
];

/// The admin a seeded workspace starts with.
pub const SEED_ADMIN: &str = "admin@example.com";

/// People of a seeded workspace: email, name, roles.
pub const SEED_PEOPLE: &[(&str, &str, &[&str])] = &[
    ("owner@example.com", "Olive Owner", &["process-owner", "procurement-lead"]),
    ("rita@example.com", "Rita Requester", &["requester"]),
    ("sam@example.com", "Sam Security", &["security"]),
    ("fin@example.com", "Fin Approver", &["finance-approver"]),
    ("audrey@example.com", "Audrey Auditor", &["auditor"]),
];

/// What seeding made.
#[derive(Debug)]
pub struct Seeded {
    pub workspace: Workspace,
    pub admin: String,
    pub runs: Vec<String>,
}

fn values(pairs: &[(&str, Value)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Creates a workspace in an empty data directory and fills it with examples.
pub fn seed_data_dir(dir: &DataDir, now: Timestamp) -> Result<Seeded> {
    init_data_dir(dir, "Attest workspace", SEED_ADMIN, "Ada Admin", now)?;
    let ws = Workspace::open(dir)?;
    let operator = Actor { kind: ActorKind::System, id: "seed".into(), roles: Default::default(), admin: true };
    for (email, name, roles) in SEED_PEOPLE {
        ws.add_user(&operator, email, name, false, now)?;
        for r in *roles {
            ws.grant_role(&operator, email, r, now)?;
        }
    }
    for (file, source) in EXAMPLES {
        let t = Workspace::validate(source, SourceFormat::Yaml, Some(file))?;
        ws.publish(&operator, t, now)?;
    }
    let rita = ws.person("rita@example.com")?;
    let owner = ws.person("owner@example.com")?;
    let mut runs = Vec::new();
    // Open at its first task.
    let open = ws.start_run(&rita, "vendor-onboarding", Some("Acme Analytics GmbH"), now)?;
    runs.push(open.run_id.clone());
    // Past the request: the security review waits.
    let review = ws.start_run(&rita, "vendor-onboarding", Some("Globex Data Ltd"), now)?;
    ws.execute(
        &review.run_id,
        &Command::SetFields {
            task: "request".into(),
            values: values(&[
                ("vendor_name", Value::from("Globex Data Ltd")),
                ("annual_spend", Value::from(25000)),
                ("personal_data", Value::from("yes")),
            ]),
        },
        &rita,
        now,
    )?;
    let contract = b"%PDF-1.4 seeded contract\n";
    ws.attach(&review.run_id, "request", Some("contract"), "contract.pdf", &mut &contract[..], &rita, now)?;
    ws.execute(&review.run_id, &Command::Complete { task: "request".into(), values: Values::new() }, &rita, now)?;
    runs.push(review.run_id.clone());
    // Cancelled by its process owner.
    let cancelled = ws.start_run(&rita, "vendor-onboarding", Some("Initech (duplicate)"), now)?;
    ws.execute(&cancelled.run_id, &Command::Cancel { reason: "Duplicate request".into() }, &owner, now)?;
    runs.push(cancelled.run_id);
    Ok(Seeded { workspace: ws, admin: SEED_ADMIN.to_string(), runs })
}
