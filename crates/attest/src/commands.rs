//! Running the commands: argument checks at the edge, then the application layer.

use attest_core::audit::{self, CheckpointPolicy};
use attest_core::workspace::{PublishOutcome, parse_email};
use attest_core::{DataDir, Error, Workspace};
use attest_engine::view::task_views;
use attest_engine::{Actor, ActorKind, Command, EventBody, RunStatus, Values};
use attest_ledger::note::VerifierKey;
use attest_store::RunFilter;
use attest_template::SourceFormat;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::cli::{Args, AuditCmd, Cmd, RoleCmd, RunCmd, TaskCmd, TemplateCmd, UserCmd};
use crate::output::{CliError, print_json};

type Result<T> = std::result::Result<T, CliError>;

/// The clock. `ATTEST_NOW` (RFC 3339) fixes it, for tests and reproducible demos.
pub fn now() -> Result<Timestamp> {
    match std::env::var("ATTEST_NOW") {
        Ok(text) => {
            text.parse().map_err(|e| CliError::Usage(format!("ATTEST_NOW='{text}' is not an RFC 3339 timestamp: {e}")))
        }
        Err(_) => Ok(Timestamp::now()),
    }
}

/// Whoever runs the CLI with access to the data directory acts as the local
/// operator for workspace administration.
fn local_operator() -> Actor {
    Actor { kind: ActorKind::System, id: "local-operator".into(), roles: Default::default(), admin: true }
}

pub fn run(args: Args) -> Result<()> {
    let dir = DataDir::new(&args.data);
    let json = args.json;
    let mutates = matches!(
        args.command,
        Cmd::Init { .. }
            | Cmd::Template(TemplateCmd::Publish { .. })
            | Cmd::Run(RunCmd::Start { .. } | RunCmd::Cancel { .. })
            | Cmd::Task(_)
            | Cmd::User(UserCmd::Add { .. })
            | Cmd::Role(_)
            | Cmd::Demo
    );
    match args.command {
        Cmd::Init { admin, admin_name, name } => init(&dir, &name, &admin, &admin_name, json),
        Cmd::Demo => crate::demo::run(&dir),
        Cmd::Template(cmd) => template(&dir, cmd, json),
        Cmd::Run(cmd) => run_cmd(&dir, cmd, json),
        Cmd::Task(cmd) => task(&dir, cmd, json),
        Cmd::Inbox { actor } => inbox(&dir, &actor, json),
        Cmd::User(cmd) => user(&dir, cmd, json),
        Cmd::Role(cmd) => role(&dir, cmd, json),
        Cmd::Audit(AuditCmd::Export { run, from, to, output }) => {
            crate::pack_cmd::export(&dir, run, from, to, &output, json)
        }
        Cmd::Audit(cmd) => audit(&dir, cmd, json),
        Cmd::Verify { file, key } => crate::pack_cmd::verify(&file, key.as_deref(), json),
        Cmd::Mine(cmd) => crate::mine_cmd::mine(&dir, cmd, json),
        Cmd::Export(cmd) => crate::mine_cmd::export(&dir, cmd, json),
        Cmd::Metrics { template, version, compare, from, to } => {
            crate::metrics_cmd::metrics(&dir, template.as_deref(), version, compare, from, to, json)
        }
        Cmd::Serve { addr } => attest_server::serve(dir.root().to_path_buf(), &addr).map_err(CliError::from),
    }?;
    if mutates {
        checkpoint_if_due(&dir)?;
    }
    Ok(())
}

/// The checkpoint policy, from `ATTEST_CHECKPOINT_EVERY_ENTRIES` and
/// `ATTEST_CHECKPOINT_EVERY_SECONDS` when set.
fn checkpoint_policy() -> Result<CheckpointPolicy> {
    let mut policy = CheckpointPolicy::default();
    if let Ok(v) = std::env::var("ATTEST_CHECKPOINT_EVERY_ENTRIES") {
        policy.every_entries = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            CliError::Usage(format!("ATTEST_CHECKPOINT_EVERY_ENTRIES='{v}' is not a positive number"))
        })?;
    }
    if let Ok(v) = std::env::var("ATTEST_CHECKPOINT_EVERY_SECONDS") {
        policy.every_seconds = v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
            CliError::Usage(format!("ATTEST_CHECKPOINT_EVERY_SECONDS='{v}' is not a number of seconds"))
        })?;
    }
    Ok(policy)
}

fn checkpoint_if_due(dir: &DataDir) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let ws = Workspace::open(dir)?;
    let signer = audit::load_signer(dir)?;
    audit::maybe_checkpoint(&ws, &signer, checkpoint_policy()?, now()?)?;
    Ok(())
}

fn audit(dir: &DataDir, cmd: AuditCmd, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    match cmd {
        AuditCmd::Export { .. } => Err(CliError::Usage("export is handled before opening the workspace".into()))?,
        AuditCmd::Key => {
            let key = audit::load_signer(dir)?.verifier_key().to_string();
            if json {
                print_json(&json!({ "verifier_key": key }))?;
            } else {
                println!("{key}");
            }
        }
        AuditCmd::Checkpoint => {
            let signer = audit::load_signer(dir)?;
            let row = audit::sign_checkpoint(&ws, &signer, now()?)?;
            if json {
                print_json(&row)?;
            } else {
                print!("{}", row.note);
            }
        }
        AuditCmd::Checkpoints => {
            let rows = ws.store().checkpoints().map_err(Error::from)?;
            if json {
                print_json(&rows)?;
            } else {
                for r in rows {
                    println!("size {:>8}  signed {}", r.size, r.created_at);
                }
            }
        }
        AuditCmd::Verify { key } => {
            let key = match key {
                Some(text) => VerifierKey::parse(text.trim())
                    .map_err(|e| CliError::Usage(format!("--key is not a verifier key: {e}")))?,
                None => audit::load_signer(dir)?.verifier_key(),
            };
            let announced = audit::announced_key(&ws)?;
            let mut report = audit::verify(&ws, &key)?;
            if announced != key {
                report.findings.insert(
                    0,
                    audit::Finding {
                        index: Some(0),
                        kind: "key",
                        message: format!("the ledger announces key {announced}, not the key being trusted"),
                    },
                );
            }
            if json {
                print_json(&json!({ "ok": report.ok(), "report": report }))?;
            } else {
                println!(
                    "checked {} entries, {} checkpoints, {} runs, {} evidence files",
                    report.entries, report.checkpoints, report.runs, report.evidence_files
                );
                for f in &report.findings {
                    match f.index {
                        Some(i) => println!("FAIL [{}] at index {i}: {}", f.kind, f.message),
                        None => println!("FAIL [{}]: {}", f.kind, f.message),
                    }
                }
                if report.ok() {
                    println!("ok: the ledger, its checkpoints, the runs and the evidence files verify");
                }
            }
            if !report.ok() {
                return Err(CliError::Failed);
            }
        }
    }
    Ok(())
}

fn init(dir: &DataDir, name: &str, admin: &str, admin_name: &str, json: bool) -> Result<()> {
    let now = now()?;
    let ws = attest_core::workspace::init_data_dir(dir, name, admin, admin_name, now)?;
    let admin = parse_email(admin)?;
    if json {
        print_json(&json!({ "data": dir.root(), "admin": admin, "verifier_key": ws.1 }))?;
    } else {
        println!("Created workspace '{name}' in {}", dir.root().display());
        println!("Admin: {admin}");
        println!("Checkpoint key: {}", ws.1);
    }
    Ok(())
}

/// Checks that a path names a regular file before it is opened: a directory,
/// a device (`/dev/zero` reports size 0 and never ends) or a FIFO (opening it
/// blocks) is refused as bad input.
fn regular_file(path: &std::path::Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::BadInput(format!("cannot read {}: not a regular file", path.display())).into());
    }
    Ok(meta)
}

fn read_source(path: &std::path::Path) -> Result<String> {
    let meta = regular_file(path)?;
    if meta.len() > attest_template::MAX_TEMPLATE_BYTES as u64 {
        return Err(Error::BadInput(format!(
            "{} is {} bytes; a template may be at most {} bytes",
            path.display(),
            meta.len(),
            attest_template::MAX_TEMPLATE_BYTES
        ))
        .into());
    }
    let bytes = std::fs::read(path).map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| Error::BadInput(format!("{} is not UTF-8 text", path.display())).into())
}

fn parse_template_file(path: &std::path::Path) -> Result<attest_template::Template> {
    let source = read_source(path)?;
    let file_name = path.display().to_string();
    Ok(Workspace::validate(&source, SourceFormat::from_path(path), Some(&file_name))?)
}

fn template(dir: &DataDir, cmd: TemplateCmd, json: bool) -> Result<()> {
    match cmd {
        TemplateCmd::Validate { file } => {
            let t = parse_template_file(&file)?;
            let hash = attest_template::content_hash(&t);
            if json {
                print_json(&json!({ "valid": true, "key": t.key, "tasks": t.tasks.len(), "content_hash": hash }))?;
            } else {
                println!("{}: valid ({} tasks, {hash})", file.display(), t.tasks.len());
            }
        }
        TemplateCmd::Publish { file, actor } => {
            let t = parse_template_file(&file)?;
            let ws = Workspace::open(dir)?;
            let by = match actor {
                Some(email) => {
                    let a = ws.person(&email)?;
                    if !(a.admin || a.has_role(attest_engine::decide::PROCESS_OWNER_ROLE)) {
                        return Err(Error::Refused(attest_engine::Refusal::new(
                            attest_engine::Rule::NotPermitted,
                            format!("{email} may not publish templates: only admins and process owners may"),
                        ))
                        .into());
                    }
                    a
                }
                None => local_operator(),
            };
            let outcome: PublishOutcome = ws.publish(&by, t, now()?)?;
            if json {
                print_json(&outcome)?;
            } else if outcome.unchanged {
                println!("{} v{} unchanged (same content, nothing published)", outcome.key, outcome.version);
            } else {
                println!("published {} v{} ({})", outcome.key, outcome.version, outcome.content_hash);
            }
        }
        TemplateCmd::List => {
            let ws = Workspace::open(dir)?;
            let list = ws.store().templates().map_err(Error::from)?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("no templates yet: publish one with `attest template publish FILE`");
            } else {
                println!("{:<28} {:>7} {:>9} {:>10}  NAME", "KEY", "VERSION", "OPEN RUNS", "ALL RUNS");
                for t in list {
                    println!(
                        "{:<28} {:>7} {:>9} {:>10}  {}",
                        t.key, t.latest_version, t.open_runs, t.total_runs, t.name
                    );
                }
            }
        }
        TemplateCmd::Show { key, version, yaml } => {
            let ws = Workspace::open(dir)?;
            let row = ws.template_row(&key, version)?;
            let t: attest_template::Template = serde_json::from_str(&row.json)?;
            if yaml {
                print!("{}", attest_template::to_yaml(&t));
            } else if json {
                print_json(&json!({
                    "key": row.key, "version": row.version, "content_hash": row.content_hash,
                    "published_at": row.published_at, "published_by": row.published_by, "template": t,
                }))?;
            } else {
                println!("{} v{}: {}", row.key, row.version, t.name);
                println!("content hash: {}", row.content_hash);
                println!("published {} by {}", row.published_at, row.published_by);
                if let Some(p) = &t.policy {
                    println!("policy: {} {}", p.id, p.title.as_deref().unwrap_or(""));
                }
                for (i, task) in t.tasks.iter().enumerate() {
                    let mut flags = Vec::new();
                    if task.stop {
                        flags.push("stop".to_string());
                    }
                    if !task.approves.is_empty() {
                        flags.push(format!("approves {}", task.approves.join(", ")));
                    }
                    if task.show_when.is_some() {
                        flags.push("conditional".into());
                    }
                    let flags = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join("; ")) };
                    println!("  {:>2}. {} ({}) - {}{flags}", i + 1, task.name, task.key, task.assignee);
                    for f in &task.fields {
                        let req = if f.required { " *" } else { "" };
                        println!("        {}: {}{req}", f.key, f.kind.type_name());
                    }
                }
            }
        }
    }
    Ok(())
}

fn status_filter(s: Option<&str>) -> Option<RunStatus> {
    match s {
        Some("open") => Some(RunStatus::Open),
        Some("completed") => Some(RunStatus::Completed),
        Some("cancelled") => Some(RunStatus::Cancelled),
        _ => None,
    }
}

fn run_cmd(dir: &DataDir, cmd: RunCmd, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    match cmd {
        RunCmd::Start { template, actor, name } => {
            let by = ws.person(&actor)?;
            let state = ws.start_run(&by, &template, name.as_deref(), now()?)?;
            if json {
                print_json(
                    &json!({ "run": state.run_id, "name": state.name, "template": state.template_key, "version": state.version }),
                )?;
            } else {
                println!("{}", state.run_id);
            }
        }
        RunCmd::Show { run } => show_run(&ws, &run, json)?,
        RunCmd::List { template, status, limit } => {
            let filter = RunFilter { template, status: status_filter(status.as_deref()), before: None, limit };
            let runs = ws.runs(&filter)?;
            if json {
                print_json(&runs)?;
            } else if runs.is_empty() {
                println!("no runs");
            } else {
                for r in runs {
                    println!(
                        "{}  {:<9}  {:<24} {}",
                        r.id,
                        r.status.as_str(),
                        format!("{} v{}", r.template_key, r.template_version),
                        r.name
                    );
                }
            }
        }
        RunCmd::Cancel { run, actor, reason } => {
            let by = ws.person(&actor)?;
            let (_, state) = ws.execute(&run, &Command::Cancel { reason }, &by, now()?)?;
            report_state(&state, json, "cancelled")?;
        }
        RunCmd::Replay { run } => {
            let state = ws.replay(&run)?;
            if json {
                print_json(&json!({ "run": state.run_id, "events": state.event_count, "matches_stored_state": true }))?;
            } else {
                println!("run {}: {} events replay to the stored state", state.run_id, state.event_count);
            }
        }
    }
    Ok(())
}

fn show_run(ws: &Workspace, run: &str, json: bool) -> Result<()> {
    let row = ws.run(run)?;
    let compiled = ws.compiled(&row.template_key, row.template_version)?;
    let now = now()?;
    let views = task_views(&compiled, &row.state, now, &ws.time_zone());
    let events = ws.run_events(run)?;
    if json {
        let history: Vec<Value> = events
            .iter()
            .map(|(seq, e)| json!({ "seq": seq, "at": e.at, "by": e.by.to_string(), "event": e.body }))
            .collect();
        print_json(&json!({
            "run": row.id, "name": row.name, "template": row.template_key, "version": row.template_version,
            "status": row.status, "starter": row.state.starter, "started_at": row.started_at,
            "finished_at": row.finished_at, "cancel_reason": row.state.cancel_reason,
            "rework_count": row.state.rework_count, "values": row.state.values, "tasks": views, "events": history,
        }))?;
        return Ok(());
    }
    println!("{} \"{}\"", row.id, row.name);
    println!(
        "{} v{} · {} · started by {} at {}",
        row.template_key,
        row.template_version,
        row.status.as_str(),
        row.state.starter,
        row.started_at
    );
    if let Some(reason) = &row.state.cancel_reason {
        println!("cancelled: {reason}");
    }
    println!();
    for v in &views {
        let mark = match v.status {
            attest_engine::view::TaskStatus::Done => "[x]",
            attest_engine::view::TaskStatus::Hidden => "[-]",
            attest_engine::view::TaskStatus::Rework => "[!]",
            attest_engine::view::TaskStatus::Open => "[ ]",
            attest_engine::view::TaskStatus::Automatic => "[~]",
        };
        let mut notes = vec![v.status.as_str().to_string()];
        if let Some(by) = &v.completed_by {
            notes.push(format!("by {by}"));
        }
        if v.status != attest_engine::view::TaskStatus::Done && v.status != attest_engine::view::TaskStatus::Hidden {
            notes.push(v.assignees.join(", "));
        }
        if let Some(due) = v.due_at {
            notes.push(format!("due {due}{}", if v.overdue { " OVERDUE" } else { "" }));
        }
        if let Some(stop) = &v.waits_for {
            notes.push(format!("waits for stop task {stop}"));
        }
        if v.rework_count > 0 {
            notes.push(format!("reworked {}x", v.rework_count));
        }
        println!("{mark} {:<22} {:<36} {}", v.key, v.name, notes.join(" · "));
    }
    if !row.state.values.is_empty() {
        println!("\nvalues:");
        for (k, v) in &row.state.values {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("sha256") => format!(
                    "{} (sha256 {})",
                    o.get("name").and_then(Value::as_str).unwrap_or("file"),
                    o.get("sha256").and_then(Value::as_str).unwrap_or("")
                ),
                other => other.to_string(),
            };
            println!("  {k} = {shown}");
        }
    }
    println!("\nhistory:");
    for (seq, e) in &events {
        println!("  #{seq:<6} {} {:<18} {}", e.at, e.body.type_name(), describe(&e.body, &e.by.to_string()));
    }
    Ok(())
}

fn describe(body: &EventBody, by: &str) -> String {
    match body {
        EventBody::RunStarted { name, .. } => format!("{by} started \"{name}\""),
        EventBody::FieldsSet { task, values } => {
            format!("{by} set {} on {task}", values.keys().cloned().collect::<Vec<_>>().join(", "))
        }
        EventBody::TaskCompleted { task, overridden } => {
            format!("{by} completed {task}{}", if *overridden { " (admin override)" } else { "" })
        }
        EventBody::TaskApproved { task, comment, .. } => {
            format!("{by} approved {task}{}", comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default())
        }
        EventBody::TaskRejected { task, comment, reopened, .. } => {
            format!("{by} rejected {task}: {comment} (rework: {})", reopened.join(", "))
        }
        EventBody::TaskReopened { task, cause } => format!("{task} reopened: {cause}"),
        EventBody::CommentAdded { task, text } => format!("{by} on {task}: {text}"),
        EventBody::EvidenceAttached { task, file, .. } => {
            format!("{by} attached {} to {task} (sha256 {})", file.name, file.sha256)
        }
        EventBody::TaskReassigned { task, to, cause } => format!("{task} reassigned to {to}: {cause}"),
        EventBody::TaskReminded { task, step } => format!("reminder {step} sent for {task}"),
        EventBody::TaskEscalated { task, step, notify, reassign } => match (notify, reassign) {
            (Some(to), _) => format!("{task} escalated (step {step}): {to} notified"),
            (None, Some(to)) => format!("{task} escalated (step {step}): reassigned to {to}"),
            (None, None) => format!("{task} escalated (step {step})"),
        },
        EventBody::RunCompleted {} => "run completed".into(),
        EventBody::RunCancelled { reason } => format!("{by} cancelled the run: {reason}"),
        EventBody::ServiceFailed { task, error } => format!("the call of service task {task} failed: {error}"),
        EventBody::ServiceRetried { task } => format!("{by} retried service task {task}"),
    }
}

/// Parses `FIELD=VALUE` (a string the engine coerces to the field's type) and
/// `FIELD:=JSON` (a typed value, for lists and tables).
pub fn parse_values(items: &[String]) -> Result<Values> {
    let mut values = Values::new();
    for item in items {
        let (key, value) = if let Some((k, v)) = item.split_once(":=") {
            let parsed: Value = serde_json::from_str(v)
                .map_err(|e| CliError::Usage(format!("'{item}': the part after ':=' is not JSON: {e}")))?;
            (k, parsed)
        } else if let Some((k, v)) = item.split_once('=') {
            (k, Value::String(v.to_string()))
        } else {
            return Err(CliError::Usage(format!("'{item}' is not FIELD=VALUE")));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(CliError::Usage(format!("'{item}' has no field name before '='")));
        }
        if values.insert(key.to_string(), value).is_some() {
            return Err(CliError::Usage(format!("field '{key}' is given twice")));
        }
    }
    Ok(values)
}

fn report_state(state: &attest_engine::RunState, json: bool, what: &str) -> Result<()> {
    if json {
        print_json(
            &json!({ "run": state.run_id, "status": state.status, "events": state.event_count, "result": what }),
        )?;
    } else {
        let run_note = match state.status {
            RunStatus::Completed => " · run completed",
            RunStatus::Cancelled => " · run cancelled",
            RunStatus::Open => "",
        };
        println!("{what}{run_note}");
    }
    Ok(())
}

fn task(dir: &DataDir, cmd: TaskCmd, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    let now = now()?;
    match cmd {
        TaskCmd::Set { run, task, actor, values } => {
            let values = parse_values(&values)?;
            let by = ws.person(&actor)?;
            let (events, state) = ws.execute(&run, &Command::SetFields { task: task.clone(), values }, &by, now)?;
            let what = if events.is_empty() { "nothing changed".to_string() } else { format!("saved {task}") };
            report_state(&state, json, &what)
        }
        TaskCmd::Complete { run, task, actor, values } => {
            let values = parse_values(&values)?;
            let by = ws.person(&actor)?;
            let (_, state) = ws.execute(&run, &Command::Complete { task: task.clone(), values }, &by, now)?;
            report_state(&state, json, &format!("completed {task}"))
        }
        TaskCmd::Approve { run, task, actor, comment } => {
            let by = ws.person(&actor)?;
            let (_, state) = ws.execute(&run, &Command::Approve { task: task.clone(), comment }, &by, now)?;
            report_state(&state, json, &format!("approved {task}"))
        }
        TaskCmd::Reject { run, task, actor, comment } => {
            let by = ws.person(&actor)?;
            let (events, state) = ws.execute(&run, &Command::Reject { task: task.clone(), comment }, &by, now)?;
            let reopened: Vec<String> = events
                .iter()
                .filter_map(|e| match &e.body {
                    EventBody::TaskRejected { reopened, .. } => Some(reopened.join(", ")),
                    _ => None,
                })
                .collect();
            report_state(&state, json, &format!("rejected {task}; back for rework: {}", reopened.join(", ")))
        }
        TaskCmd::Comment { run, task, actor, text } => {
            let by = ws.person(&actor)?;
            let (_, state) = ws.execute(&run, &Command::Comment { task: task.clone(), text }, &by, now)?;
            report_state(&state, json, &format!("commented on {task}"))
        }
        TaskCmd::Attach { run, task, file, actor, field } => {
            let by = ws.person(&actor)?;
            regular_file(&file)?;
            let mut f = std::fs::File::open(&file)
                .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", file.display())))?;
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let (events, state) = ws.attach(&run, &task, field.as_deref(), &name, &mut f, &by, now)?;
            let sha = events
                .iter()
                .find_map(|e| match &e.body {
                    EventBody::EvidenceAttached { file, .. } => Some(file.sha256.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            if json {
                print_json(&json!({ "run": state.run_id, "task": task, "file": name, "sha256": sha }))?;
                Ok(())
            } else {
                println!("attached {name} to {task} (sha256 {sha})");
                Ok(())
            }
        }
    }
}

fn inbox(dir: &DataDir, actor: &str, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    let person = ws.person(actor)?;
    let now = now()?;
    let mut items = ws.inbox(&person)?;
    // Overdue first, then by due date, then the rest in run order.
    items.sort_by_key(|i| (i.due_at.is_none_or(|d| d >= now), i.due_at.is_none(), i.due_at));
    if json {
        let rows: Vec<Value> = items
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["overdue"] = json!(i.due_at.is_some_and(|d| d < now));
                v
            })
            .collect();
        print_json(&rows)?;
        return Ok(());
    }
    if items.is_empty() {
        println!("nothing waiting for {}", person.id);
    }
    for i in items {
        let due = match i.due_at {
            Some(d) if d < now => format!("OVERDUE since {d}"),
            Some(d) => format!("due {d}"),
            None => String::new(),
        };
        let kind = if i.approval { "approve" } else { "do" };
        println!("{}  {:<20} {:<7} {:<32} {}  ({})", i.run_id, i.task_key, kind, i.task_name, due, i.run_name);
    }
    Ok(())
}

fn user(dir: &DataDir, cmd: UserCmd, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    let now = now()?;
    match cmd {
        UserCmd::Add { email, name, role, admin } => {
            let mut roles: Vec<String> =
                role.iter().map(|r| attest_core::workspace::parse_role(r)).collect::<std::result::Result<_, _>>()?;
            // A role given twice is granted once: a second grant would fail as a
            // conflict after the person had already been added.
            let mut seen = std::collections::HashSet::new();
            roles.retain(|r| seen.insert(r.clone()));
            let by = local_operator();
            ws.add_user(&by, &email, &name, admin, now)?;
            for r in &roles {
                ws.grant_role(&by, &email, r, now)?;
            }
            let email = parse_email(&email)?;
            if json {
                print_json(&json!({ "email": email, "roles": roles, "admin": admin }))?;
            } else {
                println!(
                    "added {email}{}",
                    if roles.is_empty() { String::new() } else { format!(" with roles {}", roles.join(", ")) }
                );
            }
        }
        UserCmd::List => {
            let users = ws.users()?;
            if json {
                print_json(&users)?;
            } else {
                for u in users {
                    println!(
                        "{:<32} {:<20} {}{}",
                        u.email,
                        u.name,
                        if u.admin { "admin " } else { "" },
                        u.roles.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

fn role(dir: &DataDir, cmd: RoleCmd, json: bool) -> Result<()> {
    let ws = Workspace::open(dir)?;
    let now = now()?;
    let by = local_operator();
    let (email, role, granted) = match cmd {
        RoleCmd::Grant { email, role } => {
            ws.grant_role(&by, &email, &role, now)?;
            (email, role, true)
        }
        RoleCmd::Revoke { email, role } => {
            ws.revoke_role(&by, &email, &role, now)?;
            (email, role, false)
        }
    };
    if json {
        print_json(&json!({ "email": email, "role": role, "granted": granted }))?;
    } else {
        println!(
            "{} {role} {} {email}",
            if granted { "granted" } else { "revoked" },
            if granted { "to" } else { "from" }
        );
    }
    Ok(())
}
