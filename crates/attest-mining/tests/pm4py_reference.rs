//! The figures of every log listed in the shared pm4py reference file must equal
//! pm4py's exactly, and survive a write/read round trip through XES.

use std::path::{Path, PathBuf};

use attest_mining::{
    LogSummary, ReadLimits, case_duration_stats, discover_dfg, read_xes, read_xes_file, summarize, write_xes,
};
use serde_json::Value;

/// The number of logs the reference lists today; a shorter file means it was damaged.
const LISTED_LOGS: usize = 5;

fn logs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/logs")
}

fn reference() -> serde_json::Map<String, Value> {
    let path = logs_dir().join("pm4py-reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("reference is JSON");
    json["logs"].as_object().expect("a logs object").clone()
}

fn expected_summary(figures: &Value) -> LogSummary {
    let number = |key: &str| figures[key].as_u64().unwrap_or_else(|| panic!("reference field {key} is not a number"));
    let edge = figures["top_dfg_edge"].as_array().expect("top_dfg_edge pair");
    LogSummary {
        events: number("events") as usize,
        cases: number("cases") as usize,
        activities: number("activities") as usize,
        dfg_edges: number("dfg_edges") as usize,
        dfg_total_count: number("dfg_total_count"),
        variants: number("variants") as usize,
        start_activities: number("start_activities") as usize,
        end_activities: number("end_activities") as usize,
        top_dfg_edge: Some((edge[0].as_str().expect("name").to_owned(), edge[1].as_str().expect("name").to_owned())),
        top_dfg_count: number("top_dfg_count"),
    }
}

#[test]
fn every_listed_log_matches_pm4py_exactly() {
    let logs = reference();
    assert!(logs.len() >= LISTED_LOGS, "the reference lists {} logs, expected at least {LISTED_LOGS}", logs.len());
    let mut compared = 0;
    for (name, figures) in &logs {
        let path = logs_dir().join(name);
        assert!(path.is_file(), "listed log {} is missing", path.display());
        let log = read_xes_file(&path, &ReadLimits::default()).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(summarize(&log), expected_summary(figures), "{name}");
        compared += 1;
    }
    assert_eq!(compared, logs.len());
}

#[test]
fn every_listed_log_round_trips_through_xes() {
    let logs = reference();
    let mut compared = 0;
    for name in logs.keys() {
        let log = read_xes_file(&logs_dir().join(name), &ReadLimits::default())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let mut written = Vec::new();
        write_xes(&log, &mut written).expect("writable");
        let again = read_xes(written.as_slice(), &ReadLimits::default())
            .unwrap_or_else(|error| panic!("{name} after writing: {error}"));
        assert_eq!(summarize(&again), summarize(&log), "{name}");
        assert_eq!(again.traces, log.traces, "{name}: traces differ after a round trip");
        assert_eq!(again.attributes, log.attributes, "{name}: log attributes differ");
        compared += 1;
    }
    assert_eq!(compared, logs.len());
}

/// Performance figures computed by pm4py 2.7.23.11 on the running example
/// (`discover_performance_dfg`, `get_all_case_durations`).
#[test]
fn running_example_performance_matches_pm4py() {
    let log = read_xes_file(&logs_dir().join("running-example.xes"), &ReadLimits::default()).expect("readable");
    let dfg = discover_dfg(&log);
    let edge = |from: &str, to: &str| {
        dfg.edges
            .iter()
            .find(|e| log.activity_name(e.source) == from && log.activity_name(e.target) == to)
            .unwrap_or_else(|| panic!("no edge {from} -> {to}"))
    };
    let decide = edge("check ticket", "decide");
    assert_eq!(decide.count, 6);
    assert_eq!(decide.mean_seconds, Some(181_960.0));
    assert_eq!(decide.median_seconds, Some(129_300.0));
    let casual = edge("check ticket", "examine casually");
    assert_eq!((casual.mean_seconds, casual.median_seconds), (Some(92_430.0), Some(92_430.0)));

    // pm4py's case durations: 520920, 703320, 779580, 852300, 1368780, 1576440 seconds.
    let durations = case_duration_stats(&log).expect("timestamps");
    assert_eq!(durations.cases, 6);
    assert_eq!(durations.min_seconds, 520_920.0);
    assert_eq!(durations.median_seconds, 815_940.0);
    assert_eq!(durations.mean_seconds, 966_890.0);
    assert_eq!(durations.p90_seconds, 1_472_610.0);
    assert_eq!(durations.max_seconds, 1_576_440.0);
}
