//! The `attest mine` commands, as a library module the `attest` binary embeds:
//!
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Process mining on event logs.
//!     #[command(subcommand)]
//!     Mine(attest_mining::cli::MineCommand),
//! }
//! // ...
//! Command::Mine(mine) => attest_mining::cli::run(&mine, cli.json),
//! ```
//!
//! A log whose name ends in `.csv` or `.csv.gz` is read as CSV, anything else
//! as XES (gzip is detected by content). Exit codes: 0 on success, 2 when an
//! input is missing or invalid (the message names the file and the location),
//! 1 when an output cannot be written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::analysis::{CaseDurationStats, LogSummary, case_duration_stats, discover_dfg, summarize, variants};
use crate::csv::{CsvOptions, read_csv};
use crate::input::ReadLimits;
use crate::log::{ActivityId, ActivityTable, EventLog};
use crate::petri::{read_pnml_file, token_replay};
use crate::svg::render_dfg;
use crate::xes::read_xes;

/// Logs smaller than this load too fast for a progress bar to help.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

/// Process-mining commands on event logs.
#[derive(Debug, Subcommand)]
pub enum MineCommand {
    /// Headline figures: events, cases, activities, variants, DFG, case durations.
    Stats(LogArgs),
    /// The directly-follows graph with counts and mean/median times.
    Dfg {
        #[command(flatten)]
        log: LogArgs,
        /// Also draw the graph as SVG into FILE.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Variants (distinct activity sequences), most frequent first.
    Variants {
        #[command(flatten)]
        log: LogArgs,
        /// How many variants to list.
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
    },
    /// Conformance: token-based replay fitness on a Petri net (pm4py's definition),
    /// or, in `attest`, the deviations from a published template per case.
    Conform(ConformArgs),
}

/// Arguments of `conform`: a Petri net, or (in the `attest` binary, which has
/// a workspace) a published template.
#[derive(Debug, Args)]
pub struct ConformArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// The Petri net (PNML) to replay the log on.
    #[arg(long, value_name = "FILE", conflicts_with = "template", required_unless_present = "template")]
    pub pnml: Option<PathBuf>,
    /// The published template to check the log against (needs a workspace).
    #[arg(long, value_name = "KEY")]
    pub template: Option<String>,
    /// CSV (`activity,task`) or JSON (`{"activity": "task"}`) file renaming the
    /// log's activities before the check, e.g. to the template's task keys.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
}

/// The event log to read, and how to read a CSV one.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Event log: XES (.xes, .xes.gz) or CSV (.csv, .csv.gz).
    #[arg(value_name = "LOG")]
    pub path: PathBuf,
    /// CSV: the case id column.
    #[arg(long = "case", value_name = "COL", default_value = "case:concept:name")]
    pub case_column: String,
    /// CSV: the activity column.
    #[arg(long = "activity", value_name = "COL", default_value = "concept:name")]
    pub activity_column: String,
    /// CSV: the timestamp column (default: time:timestamp when present).
    #[arg(long = "timestamp", value_name = "COL")]
    pub timestamp_column: Option<String>,
}

/// Runs a command, printing text (or JSON when `json`) on stdout and errors on stderr.
pub fn run(command: &MineCommand, json: bool) -> ExitCode {
    match execute(command, json) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(CliError::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Output(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad or missing input: exit code 2.
    Input(String),
    /// An output could not be written: exit code 1.
    Output(String),
}

/// Runs a command and returns what [`run`] prints: text, or JSON when `json`.
pub fn execute(command: &MineCommand, json: bool) -> Result<String, CliError> {
    match command {
        MineCommand::Stats(args) => {
            let log = load_log(args)?;
            let report = StatsReport::new(&log, &args.path);
            Ok(if json { to_json(&report) } else { report.text() })
        }
        MineCommand::Dfg { log: args, svg } => {
            let log = load_log(args)?;
            let dfg = discover_dfg(&log);
            if let Some(svg_path) = svg {
                std::fs::write(svg_path, render_dfg(&log, &dfg))
                    .map_err(|error| CliError::Output(format!("{}: cannot write SVG: {error}", svg_path.display())))?;
            }
            let edges: Vec<EdgeReport> = dfg
                .edges
                .iter()
                .map(|edge| EdgeReport {
                    source: log.activity_name(edge.source),
                    target: log.activity_name(edge.target),
                    count: edge.count,
                    mean_seconds: edge.mean_seconds,
                    median_seconds: edge.median_seconds,
                })
                .collect();
            let named = |counts: &[(ActivityId, u64)]| named_counts(&log, counts);
            let report = DfgReport {
                start_activities: named(&dfg.start_activities),
                end_activities: named(&dfg.end_activities),
                edges,
            };
            Ok(if json { to_json(&report) } else { report.text() })
        }
        MineCommand::Variants { log: args, top } => {
            let log = load_log(args)?;
            let all = variants(&log);
            let cases = log.traces.len().max(1) as f64;
            let report = VariantsReport {
                variants: all.len(),
                cases: log.traces.len(),
                top: all
                    .iter()
                    .take(*top)
                    .map(|variant| VariantReport {
                        count: variant.count,
                        share: variant.count as f64 / cases,
                        activities: variant.names(&log),
                    })
                    .collect(),
            };
            Ok(if json { to_json(&report) } else { report.text() })
        }
        MineCommand::Conform(args) => {
            let Some(pnml) = &args.pnml else {
                return Err(CliError::Input(
                    "conform --template needs an Attest workspace: run it as `attest mine conform LOG --template KEY`, or give --pnml FILE"
                        .to_owned(),
                ));
            };
            let mut log = load_log(&args.log)?;
            if let Some(map) = &args.map {
                rename_activities(&mut log, &read_activity_map(map)?);
            }
            let net = read_pnml_file(pnml).map_err(|error| CliError::Input(format!("{}: {error}", pnml.display())))?;
            let result = token_replay(&log, &net);
            if json {
                Ok(to_json(&result))
            } else {
                Ok(format!(
                    "log fitness            {:.6}\naverage trace fitness  {:.6}\nfitting traces         {} of {} ({:.2}%)\ntokens                 missing {}, consumed {}, remaining {}, produced {}\nevents not in the net  {}",
                    result.log_fitness,
                    result.average_trace_fitness,
                    result.fitting_traces,
                    result.traces.len(),
                    result.percentage_fitting_traces,
                    result.missing_tokens,
                    result.consumed_tokens,
                    result.remaining_tokens,
                    result.produced_tokens,
                    result.traces.iter().map(|t| t.unknown_events).sum::<u64>(),
                ))
            }
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain report structs cannot fail; fall back to null regardless.
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned())
}

fn is_csv(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// Reads the log named by `args`, with a progress bar on an interactive stderr.
pub fn load_log(args: &LogArgs) -> Result<EventLog, CliError> {
    let path = &args.path;
    let input_error = |message: String| CliError::Input(format!("{}: {message}", path.display()));
    let file = File::open(path).map_err(|error| input_error(format!("cannot open: {error}")))?;
    let size_bytes = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let progress = (std::io::stderr().is_terminal() && size_bytes >= PROGRESS_MIN_BYTES).then(|| {
        let bar = ProgressBar::new(size_bytes);
        if let Ok(style) =
            ProgressStyle::with_template("reading {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(path.display().to_string());
        bar
    });
    let reader: Box<dyn Read> = match &progress {
        Some(bar) => Box::new(bar.wrap_read(file)),
        None => Box::new(file),
    };
    let result = if is_csv(path) {
        let options = CsvOptions {
            case_column: args.case_column.clone(),
            activity_column: args.activity_column.clone(),
            timestamp_optional: args.timestamp_column.is_none(),
            timestamp_column: Some(args.timestamp_column.clone().unwrap_or_else(|| "time:timestamp".to_owned())),
            ..CsvOptions::default()
        };
        read_csv(reader, &options).map_err(|error| error.to_string())
    } else {
        read_xes(reader, &ReadLimits::default()).map_err(|error| error.to_string())
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    result.map_err(input_error)
}

/// Mapping files larger than this are refused unread.
const MAX_MAP_BYTES: u64 = 4 << 20;

/// Reads a mapping from activity name to new name (a task key, a transition
/// label): JSON (`.json`, an object of strings) or CSV (two columns, an
/// optional `activity,task` header). An activity listed twice is an error.
pub fn read_activity_map(path: &Path) -> Result<BTreeMap<String, String>, CliError> {
    let input_error = |message: String| CliError::Input(format!("{}: {message}", path.display()));
    let file = File::open(path).map_err(|error| input_error(format!("cannot open: {error}")))?;
    let mut text = String::new();
    file.take(MAX_MAP_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| input_error(format!("cannot read: {error}")))?;
    if text.len() as u64 > MAX_MAP_BYTES {
        return Err(input_error(format!("a mapping may be at most {MAX_MAP_BYTES} bytes")));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("json")) {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|error| input_error(format!("not a JSON object of activity names to names: {error}")))?;
        for (activity, target) in object {
            let serde_json::Value::String(target) = target else {
                return Err(input_error(format!("activity {activity:?} maps to {target}, not to a string")));
            };
            pairs.push((activity, target));
        }
    } else {
        let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|error| input_error(error.to_string()))?;
            let line = index + 1;
            if record.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            let [activity, target] = [record.get(0), record.get(1)].map(|cell| cell.unwrap_or("").trim());
            if record.len() != 2 || target.is_empty() {
                return Err(input_error(format!("line {line}: expected two columns, activity,task")));
            }
            let header = index == 0
                && activity.eq_ignore_ascii_case("activity")
                && ["task", "task_key", "key"].iter().any(|name| target.eq_ignore_ascii_case(name));
            if !header {
                pairs.push((activity.to_owned(), target.to_owned()));
            }
        }
    }
    let mut map = BTreeMap::new();
    for (activity, target) in pairs {
        if target.trim().is_empty() {
            return Err(input_error(format!("activity {activity:?} maps to an empty name")));
        }
        if map.insert(activity.clone(), target).is_some() {
            return Err(input_error(format!("activity {activity:?} is mapped twice")));
        }
    }
    Ok(map)
}

/// Renames the activities of `log` that `map` lists; the others keep their
/// names. Two activities mapped to one name become one activity.
pub fn rename_activities(log: &mut EventLog, map: &BTreeMap<String, String>) {
    let mut table = ActivityTable::default();
    let new_ids: Vec<ActivityId> =
        log.activities.iter().map(|(_, name)| table.intern(map.get(name).map_or(name, String::as_str))).collect();
    for event in log.traces.iter_mut().flat_map(|trace| trace.events.iter_mut()) {
        if let Some(&id) = new_ids.get(event.activity.index()) {
            event.activity = id;
        }
    }
    log.activities = table;
}

/// Formats seconds as a short human duration.
fn human_duration(seconds: f64) -> String {
    let total = seconds.round() as i64;
    let (days, hours, minutes, secs) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60, total % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{seconds:.1}s")
    }
}

/// An activity with a count, as reported.
#[derive(Serialize)]
struct ActivityCount {
    activity: String,
    count: u64,
}

fn named_counts(log: &EventLog, counts: &[(ActivityId, u64)]) -> Vec<ActivityCount> {
    counts.iter().map(|&(id, count)| ActivityCount { activity: log.activity_name(id).to_owned(), count }).collect()
}

#[derive(Serialize)]
struct StatsReport {
    log: String,
    #[serde(flatten)]
    summary: LogSummary,
    start_activity_counts: Vec<ActivityCount>,
    end_activity_counts: Vec<ActivityCount>,
    activity_counts: Vec<ActivityCount>,
    case_duration: Option<CaseDurationStats>,
}

impl StatsReport {
    fn new(log: &EventLog, path: &Path) -> Self {
        let dfg = discover_dfg(log);
        let named = |counts: &[(ActivityId, u64)]| named_counts(log, counts);
        Self {
            log: path.display().to_string(),
            summary: summarize(log),
            start_activity_counts: named(&dfg.start_activities),
            end_activity_counts: named(&dfg.end_activities),
            activity_counts: named(&dfg.activity_counts),
            case_duration: case_duration_stats(log),
        }
    }

    fn text(&self) -> String {
        let s = &self.summary;
        let list = |items: &[ActivityCount]| {
            items.iter().map(|item| format!("{} ({})", item.activity, item.count)).collect::<Vec<_>>().join(", ")
        };
        let mut out = format!(
            "log               {}\nevents            {}\ncases             {}\nactivities        {}\nvariants          {}\ndfg edges         {} (total {})\n",
            self.log, s.events, s.cases, s.activities, s.variants, s.dfg_edges, s.dfg_total_count
        );
        if let Some((from, to)) = &s.top_dfg_edge {
            out += &format!("top edge          {from} -> {to} ({})\n", s.top_dfg_count);
        }
        out += &format!("start activities  {}\n", list(&self.start_activity_counts));
        out += &format!("end activities    {}\n", list(&self.end_activity_counts));
        match &self.case_duration {
            Some(d) => {
                out += &format!(
                    "case duration     min {}, median {}, mean {}, p90 {}, max {} ({} cases with timestamps)\n",
                    human_duration(d.min_seconds),
                    human_duration(d.median_seconds),
                    human_duration(d.mean_seconds),
                    human_duration(d.p90_seconds),
                    human_duration(d.max_seconds),
                    d.cases
                );
            }
            None => out += "case duration     (no timestamps)\n",
        }
        out += "\n  events  activity\n";
        for ActivityCount { activity: name, count } in &self.activity_counts {
            out += &format!("{count:>8}  {name}\n");
        }
        out.trim_end().to_owned()
    }
}

#[derive(Serialize)]
struct EdgeReport<'l> {
    source: &'l str,
    target: &'l str,
    count: u64,
    mean_seconds: Option<f64>,
    median_seconds: Option<f64>,
}

#[derive(Serialize)]
struct DfgReport<'l> {
    start_activities: Vec<ActivityCount>,
    end_activities: Vec<ActivityCount>,
    edges: Vec<EdgeReport<'l>>,
}

impl DfgReport<'_> {
    fn text(&self) -> String {
        let time = |seconds: Option<f64>| seconds.map_or_else(|| "-".to_owned(), human_duration);
        let mut out = format!("{:>8}  {:>10}  {:>10}  edge\n", "count", "mean", "median");
        for ActivityCount { activity: name, count } in &self.start_activities {
            out += &format!("{count:>8}  {:>10}  {:>10}  [start] -> {name}\n", "", "");
        }
        for edge in &self.edges {
            out += &format!(
                "{:>8}  {:>10}  {:>10}  {} -> {}\n",
                edge.count,
                time(edge.mean_seconds),
                time(edge.median_seconds),
                edge.source,
                edge.target
            );
        }
        for ActivityCount { activity: name, count } in &self.end_activities {
            out += &format!("{count:>8}  {:>10}  {:>10}  {name} -> [end]\n", "", "");
        }
        out.trim_end().to_owned()
    }
}

#[derive(Serialize)]
struct VariantReport<'l> {
    count: u64,
    share: f64,
    activities: Vec<&'l str>,
}

#[derive(Serialize)]
struct VariantsReport<'l> {
    variants: usize,
    cases: usize,
    top: Vec<VariantReport<'l>>,
}

impl VariantsReport<'_> {
    fn text(&self) -> String {
        let mut out = format!(
            "{} variants over {} cases; the {} most frequent:\n{:>8}  {:>6}  {:>6}  activities\n",
            self.variants,
            self.cases,
            self.top.len(),
            "cases",
            "share",
            "length"
        );
        for variant in &self.top {
            out += &format!(
                "{:>8}  {:>5.1}%  {:>6}  {}\n",
                variant.count,
                variant.share * 100.0,
                variant.activities.len(),
                variant.activities.join(" → ")
            );
        }
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        mine: MineCommand,
    }

    #[test]
    fn parses_the_documented_command_lines() {
        let cli = TestCli::try_parse_from(["attest", "dfg", "log.xes", "--svg", "out.svg"]).expect("dfg parses");
        assert!(matches!(cli.mine, MineCommand::Dfg { svg: Some(_), .. }));
        let cli = TestCli::try_parse_from([
            "attest",
            "variants",
            "log.csv",
            "--top",
            "3",
            "--case",
            "id",
            "--activity",
            "task",
            "--timestamp",
            "when",
        ])
        .expect("variants parses");
        let MineCommand::Variants { log, top } = cli.mine else {
            panic!("expected variants");
        };
        assert_eq!((top, log.case_column.as_str()), (3, "id"));
        assert_eq!(log.timestamp_column.as_deref(), Some("when"));
        assert!(TestCli::try_parse_from(["attest", "conform", "log.xes"]).is_err());
        assert!(
            TestCli::try_parse_from(["attest", "conform", "log.xes", "--pnml", "n.pnml", "--template", "k"]).is_err()
        );
        let cli = TestCli::try_parse_from(["attest", "conform", "log.xes", "--template", "k", "--map", "m.csv"])
            .expect("conform --template parses");
        let MineCommand::Conform(args) = &cli.mine else {
            panic!("expected conform");
        };
        assert_eq!((args.template.as_deref(), args.pnml.as_ref()), (Some("k"), None));
        let error = execute(&cli.mine, false).expect_err("no workspace here");
        assert!(matches!(&error, CliError::Input(message) if message.contains("attest mine conform")), "{error:?}");
        assert!(MineCommand::has_subcommand("stats"));
    }

    #[test]
    fn activity_maps_from_csv_and_json() {
        let dir = tempfile::tempdir().expect("temp dir");
        let csv = dir.path().join("map.csv");
        std::fs::write(&csv, "activity,task\nregister request,register\n\"decide, finally\",decide\n").expect("write");
        let map = read_activity_map(&csv).expect("csv map");
        assert_eq!(map.get("decide, finally").map(String::as_str), Some("decide"));
        assert_eq!(map.len(), 2);
        let json = dir.path().join("map.json");
        std::fs::write(&json, r#"{"a": "x", "b": "x"}"#).expect("write");
        let map = read_activity_map(&json).expect("json map");
        let mut log = EventLog::new();
        log.push_case("1", ["a", "b", "c"]);
        rename_activities(&mut log, &map);
        let names: Vec<&str> = log.traces[0].events.iter().map(|e| log.activity_name(e.activity)).collect();
        assert_eq!((names, log.activities.len()), (vec!["x", "x", "c"], 2));
        std::fs::write(&csv, "a,x\na,y\n").expect("write");
        assert!(matches!(read_activity_map(&csv), Err(CliError::Input(m)) if m.contains("mapped twice")));
        std::fs::write(&json, r#"{"a": 1}"#).expect("write");
        assert!(read_activity_map(&json).is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(12.34), "12.3s");
        assert_eq!(human_duration(125.0), "2m 5s");
        assert_eq!(human_duration(3.0 * 3600.0 + 120.0), "3h 2m");
        assert_eq!(human_duration(2.0 * 86_400.0 + 5.0 * 3600.0), "2d 5h");
    }
}
