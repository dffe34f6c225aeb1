//! Times reading + DFG + variants on the largest shared log in Rust and in pm4py,
//! checks that both give the same DFG and variants, and prints the speed-up.
//!
//! Run: `cargo bench -p attest-mining --bench vs_pm4py` (needs `pip install pm4py`;
//! `PYTHON` picks the interpreter). Exits non-zero if the results differ or pm4py
//! cannot run.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use attest_mining::{ReadLimits, discover_dfg, read_xes_file, variants};
use serde_json::Value;

const RUST_RUNS: usize = 15;
const PM4PY_RUNS: usize = 3;
const TARGET_SPEEDUP: f64 = 20.0;

type Figures = (Vec<(String, String, u64)>, Vec<(Vec<String>, u64)>);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The listed log with the most events, according to the reference file.
fn largest_log() -> Result<PathBuf, String> {
    let logs = crate_dir().join("../../../shared/logs");
    let text = std::fs::read_to_string(logs.join("pm4py-reference.json"))
        .map_err(|error| format!("cannot read the pm4py reference: {error}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|error| error.to_string())?;
    let (name, _) = json["logs"]
        .as_object()
        .ok_or("the reference has no logs")?
        .iter()
        .max_by_key(|(_, figures)| figures["events"].as_u64().unwrap_or(0))
        .ok_or("the reference lists no log")?;
    Ok(logs.join(name))
}

/// One timed run: read, DFG, variants; returns the figures in pm4py's JSON shape.
fn rust_run(path: &Path) -> Result<Figures, String> {
    let log = read_xes_file(path, &ReadLimits::default()).map_err(|error| error.to_string())?;
    let dfg = discover_dfg(&log);
    let found = variants(&log);
    let mut edges: Vec<(String, String, u64)> = dfg
        .edges
        .iter()
        .map(|edge| (log.activity_name(edge.source).to_owned(), log.activity_name(edge.target).to_owned(), edge.count))
        .collect();
    edges.sort();
    let mut listed: Vec<(Vec<String>, u64)> = found
        .iter()
        .map(|variant| {
            let names = variant.names(&log).into_iter().map(str::to_owned).collect();
            (names, variant.count)
        })
        .collect();
    listed.sort();
    Ok((edges, listed))
}

fn pm4py_figures(json: &Value) -> Option<Figures> {
    let edges = json["dfg"]
        .as_array()?
        .iter()
        .map(|edge| Some((edge[0].as_str()?.to_owned(), edge[1].as_str()?.to_owned(), edge[2].as_u64()?)))
        .collect::<Option<Vec<_>>>()?;
    let listed = json["variants"]
        .as_array()?
        .iter()
        .map(|variant| {
            let names = variant[0]
                .as_array()?
                .iter()
                .map(|name| name.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?;
            Some((names, variant[1].as_u64()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((edges, listed))
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() -> ExitCode {
    match bench() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("vs_pm4py: {message}");
            ExitCode::from(2)
        }
    }
}

fn bench() -> Result<bool, String> {
    let path = largest_log()?;
    println!("log: {}", path.display());

    let figures = rust_run(&path)?;
    let mut seconds = Vec::with_capacity(RUST_RUNS);
    for _ in 0..RUST_RUNS {
        let start = Instant::now();
        let again = rust_run(&path)?;
        seconds.push(start.elapsed().as_secs_f64());
        if again != figures {
            return Err("the Rust results changed between runs".into());
        }
    }
    let rust_seconds = median(seconds);
    println!("rust  (read + DFG + variants, median of {RUST_RUNS}): {:.2} ms", rust_seconds * 1e3);

    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = crate_dir().join("bench/vs_pm4py.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&path)
        .arg(PM4PY_RUNS.to_string())
        .output()
        .map_err(|error| format!("cannot run {python}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{python} {} failed (is pm4py installed? pip install pm4py):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: Value =
        serde_json::from_slice(&output.stdout).map_err(|error| format!("unreadable pm4py output: {error}"))?;
    let pm4py_seconds = json["median_seconds"].as_f64().ok_or("no pm4py time")?;
    let pm4py = pm4py_figures(&json).ok_or("malformed pm4py figures")?;

    let same = pm4py == figures;
    let speedup = pm4py_seconds / rust_seconds;
    println!("results identical: {same} ({} DFG edges, {} variants)", figures.0.len(), figures.1.len());
    println!(
        "pm4py {} (same, median of {PM4PY_RUNS}): {:.2} ms",
        json["pm4py_version"].as_str().unwrap_or("?"),
        pm4py_seconds * 1e3
    );
    let verdict = if speedup >= TARGET_SPEEDUP { "meets" } else { "BELOW" };
    println!("speed-up: {speedup:.1}x ({verdict} the {TARGET_SPEEDUP}x target)");
    Ok(same)
}
