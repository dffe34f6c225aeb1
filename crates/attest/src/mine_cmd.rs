//! `attest mine` and `attest export xes`: the mining crate's commands, plus
//! what needs a workspace (checking a log against a published template,
//! exporting the runs) or a template (drafting one from a log).

use std::collections::BTreeMap;
use std::path::Path;

use attest_core::mining::{conform_template, draft_template_checked, runs_to_log};
use attest_core::{DataDir, Workspace};
use attest_mining::cli::{
    CliError as MineError, ConformArgs, MineCommand, load_log, read_activity_map, rename_activities,
};
use attest_mining::{Deviation, write_xes_file};
use attest_template::SourceFormat;
use serde::Serialize;
use serde_json::json;

use crate::cli::{ExportCmd, MineCmd};
use crate::output::{CliError, print_json};

type Result<T> = std::result::Result<T, CliError>;

pub fn mine(dir: &DataDir, cmd: MineCmd, json: bool) -> Result<()> {
    match cmd {
        MineCmd::Log(MineCommand::Conform(args)) if args.template.is_some() => conform(dir, &args, json),
        MineCmd::Log(command) => {
            let out = attest_mining::cli::execute(&command, json).map_err(|e| mine_error(e, json))?;
            println!("{out}");
            Ok(())
        }
        MineCmd::Draft { log, key, name, output } => {
            let events = load_log(&log).map_err(|e| mine_error(e, json))?;
            let stem = log_stem(&log.path);
            let key = key.unwrap_or_else(|| template_key_from(&stem));
            let name = name.unwrap_or_else(|| format!("Drafted from {stem}"));
            let template = draft_template_checked(&events, &key, &name)?;
            let Some(path) = output else {
                if json {
                    print_json(&template)?;
                } else {
                    print!("{}", attest_template::to_yaml(&template));
                }
                return Ok(());
            };
            let text = match SourceFormat::from_path(&path) {
                SourceFormat::Json => attest_template::to_json_pretty(&template),
                SourceFormat::Yaml => attest_template::to_yaml(&template),
            };
            std::fs::write(&path, text).map_err(|e| write_error(&path, &e, json))?;
            let conditional = template.tasks.iter().filter(|t| t.show_when.is_some()).count();
            let stops = template.tasks.iter().filter(|t| t.stop).count();
            if json {
                print_json(&json!({
                    "output": path.display().to_string(),
                    "key": template.key,
                    "tasks": template.tasks.len(),
                    "conditional_tasks": conditional,
                    "stop_tasks": stops,
                    "roles": template.roles,
                }))?;
            } else {
                println!(
                    "wrote {}: template {} with {} tasks ({conditional} conditional, {stops} stop), roles: {}",
                    path.display(),
                    template.key,
                    template.tasks.len(),
                    if template.roles.is_empty() { "none".to_string() } else { template.roles.join(", ") }
                );
            }
            Ok(())
        }
    }
}

pub fn export(dir: &DataDir, cmd: ExportCmd, json: bool) -> Result<()> {
    let ExportCmd::Xes { template, output } = cmd;
    let ws = Workspace::open(dir)?;
    let log = runs_to_log(&ws, template.as_deref())?;
    write_xes_file(&log, &output).map_err(|e| write_error(&output, &e, json))?;
    let (cases, events, activities) = (log.traces.len(), log.event_count(), log.activities.len());
    if json {
        print_json(&json!({
            "output": output.display().to_string(),
            "cases": cases,
            "events": events,
            "activities": activities,
        }))?;
    } else {
        println!("wrote {}: {cases} cases, {events} events, {activities} activities", output.display());
    }
    Ok(())
}

/// `conform --template KEY`: the log against the latest version of a published template.
fn conform(dir: &DataDir, args: &ConformArgs, json: bool) -> Result<()> {
    let key = args.template.as_deref().unwrap_or_default();
    let ws = Workspace::open(dir)?;
    let row = ws.template_row(key, None)?;
    let compiled = ws.compiled(key, row.version)?;
    let mut log = load_log(&args.log).map_err(|e| mine_error(e, json))?;
    if let Some(map) = &args.map {
        rename_activities(&mut log, &read_activity_map(map).map_err(|e| mine_error(e, json))?);
    }
    let result = conform_template(&log, &compiled.template);
    let summary = deviation_summary(&result.cases);
    if json {
        return print_json(&json!({
            "log": args.log.path.display().to_string(),
            "template": key,
            "version": row.version,
            "fitness": result.fitness,
            "mean_case_fitness": result.mean_case_fitness,
            "fitting_cases": result.fitting_cases,
            "cases_total": result.cases.len(),
            "deviation_summary": summary,
            "cases": result.cases,
        }))
        .map_err(CliError::from);
    }
    println!("template          {key} v{}", row.version);
    println!("log               {}", args.log.path.display());
    println!("fitness           {:.6}", result.fitness);
    println!("mean case fitness {:.6}", result.mean_case_fitness);
    println!("fitting cases     {} of {}", result.fitting_cases, result.cases.len());
    if !summary.is_empty() {
        println!("\n   cases  deviation");
        for item in &summary {
            println!("{:>8}  {} '{}'", item.cases, item.kind, item.activity);
        }
    }
    println!("\n fitness  case");
    for (case, trace) in result.cases.iter().zip(&log.traces) {
        println!("{:>8.4}  {}", case.fitness, case.case_id);
        for deviation in &case.deviations {
            println!("          {}", describe(deviation, trace.events.len()));
        }
    }
    Ok(())
}

/// How often each kind of deviation happens on each activity, most frequent first.
#[derive(Debug, Serialize)]
struct DeviationCount {
    kind: &'static str,
    activity: String,
    cases: usize,
}

fn deviation_summary(cases: &[attest_mining::CaseConformance]) -> Vec<DeviationCount> {
    let mut counts: BTreeMap<(&'static str, &str), usize> = BTreeMap::new();
    for case in cases {
        let mut seen = std::collections::HashSet::new();
        for deviation in &case.deviations {
            let key = (kind(deviation), activity(deviation));
            if seen.insert(key) {
                *counts.entry(key).or_default() += 1;
            }
        }
    }
    let mut out: Vec<DeviationCount> = counts
        .into_iter()
        .map(|((kind, activity), cases)| DeviationCount { kind, activity: activity.to_owned(), cases })
        .collect();
    out.sort_by_key(|item| std::cmp::Reverse(item.cases));
    out
}

fn kind(deviation: &Deviation) -> &'static str {
    match deviation {
        Deviation::Skipped { .. } => "skipped",
        Deviation::Extra { .. } => "extra",
        Deviation::OutOfOrder { .. } => "out of order",
        Deviation::Repeated { .. } => "repeated",
    }
}

fn activity(deviation: &Deviation) -> &str {
    match deviation {
        Deviation::Skipped { activity, .. }
        | Deviation::Extra { activity, .. }
        | Deviation::OutOfOrder { activity, .. }
        | Deviation::Repeated { activity, .. } => activity,
    }
}

/// One deviation in words, with where it happens (event number from 1).
fn describe(deviation: &Deviation, events: usize) -> String {
    let at = deviation.event_index();
    let place = if at >= events { "at the end".to_string() } else { format!("before event {}", at + 1) };
    match deviation {
        Deviation::Skipped { activity, .. } => format!("skipped '{activity}' (due {place})"),
        other => format!("{} '{}' at event {}", kind(other), activity(other), at + 1),
    }
}

/// A mining error with the exit code contract: bad input 2, an unwritable output 1.
fn mine_error(error: MineError, json: bool) -> CliError {
    match error {
        MineError::Input(message) => CliError::Usage(message),
        MineError::Output(message) => failed(&message, json),
    }
}

fn write_error(path: &Path, error: &dyn std::fmt::Display, json: bool) -> CliError {
    failed(&format!("{}: cannot write: {error}", path.display()), json)
}

/// Prints the message and fails with exit code 1.
fn failed(message: &str, json: bool) -> CliError {
    if json {
        eprintln!("{}", json!({ "error": "output", "message": message }));
    } else {
        eprintln!("error: {message}");
    }
    CliError::Failed
}

/// The log's file name without its extensions (`log.xes.gz` → `log`).
fn log_stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let cut = [".xes.gz", ".csv.gz", ".xes", ".csv", ".gz"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map_or(name.len(), |ext| name.len() - ext.len());
    name[..cut].to_string()
}

/// A template key (`^[a-z0-9][a-z0-9-]{0,62}$`) from a file stem.
fn template_key_from(stem: &str) -> String {
    let mut key = String::new();
    for ch in stem.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            key.push(ch);
        } else if !key.is_empty() && !key.ends_with('-') {
            key.push('-');
        }
    }
    key.truncate(63);
    let key = key.trim_end_matches('-');
    if key.is_empty() { "drafted".to_string() } else { key.to_string() }
}
