//! `attest metrics`: a template's process metrics, two versions side by
//! side, or the workspace overview, as text or JSON.

use attest_core::metrics::stats::human_duration;
use attest_core::metrics::{Durations, Period, Rate, TemplateMetrics};
use attest_core::{DataDir, Workspace};

use crate::commands::now;
use crate::output::{CliError, print_json};

type Result<T> = std::result::Result<T, CliError>;

pub fn metrics(
    dir: &DataDir,
    template: Option<&str>,
    version: Option<u32>,
    compare: Option<u32>,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> Result<()> {
    let period = Period::from_dates(from.as_deref(), to.as_deref())?;
    let now = now()?;
    let ws = Workspace::open(dir)?;
    let Some(key) = template else {
        let overview = ws.metrics_overview(period, now)?;
        if json {
            print_json(&overview)?;
            return Ok(());
        }
        println!(
            "{:<28} {:>7} {:>9} {:>9} {:>10} {:>12} {:>8}",
            "template", "runs", "open", "done", "cycle p50", "rework/run", "overdue"
        );
        for t in &overview.templates {
            println!(
                "{:<28} {:>7} {:>9} {:>9} {:>10} {:>12} {:>8}",
                t.template,
                t.runs.started,
                t.runs.open,
                percent(&t.completion),
                duration(t.cycle_time.median_ms),
                t.rework_rate.map_or("-".into(), |r| format!("{r:.2}")),
                t.overdue.tasks
            );
        }
        println!(
            "{} runs, {} open, {} overdue tasks now",
            overview.runs.started, overview.runs.open, overview.overdue.tasks
        );
        return Ok(());
    };
    match (version, compare) {
        (Some(left), Some(right)) => {
            let c = ws.compare_versions(key, left, right, period, now)?;
            if json {
                print_json(&c)?;
            } else {
                print_side_by_side(&c.left, &c.right);
            }
        }
        _ => {
            let m = ws.template_metrics(key, version, period, now)?;
            if json {
                print_json(&m)?;
            } else {
                print_metrics(&m);
            }
        }
    }
    Ok(())
}

fn percent(r: &Rate) -> String {
    r.rate.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), human_duration)
}

fn durations(d: &Durations) -> String {
    format!("median {}, p90 {} ({} measured)", duration(d.median_ms), duration(d.p90_ms), d.count)
}

/// The headline figures as (label, value) lines, shared by both layouts.
fn lines(m: &TemplateMetrics) -> Vec<(String, String)> {
    let mut out = vec![
        ("runs started".into(), m.runs.started.to_string()),
        ("completed".into(), format!("{} ({})", m.runs.completed, percent(&m.completion))),
        ("cancelled".into(), format!("{} ({})", m.runs.cancelled, percent(&m.cancellation))),
        ("open".into(), m.runs.open.to_string()),
        ("cycle time".into(), durations(&m.cycle_time)),
        (
            "rework".into(),
            format!("{} rejections, {} per run", m.rejections, m.rework_rate.map_or("-".into(), |r| format!("{r:.2}"))),
        ),
        (
            "on time, tasks".into(),
            format!("{} of {} ({})", m.on_time_tasks.count, m.on_time_tasks.of, percent(&m.on_time_tasks)),
        ),
        (
            "on time, runs".into(),
            format!("{} of {} ({})", m.on_time_runs.count, m.on_time_runs.of, percent(&m.on_time_runs)),
        ),
        ("overdue now".into(), format!("{} tasks in {} runs", m.overdue.tasks, m.overdue.runs)),
    ];
    for c in &m.controls {
        out.push((
            format!("control {}", c.id),
            format!("{} of {} passed ({})", c.pass.count, c.pass.of, percent(&c.pass)),
        ));
    }
    out
}

fn print_metrics(m: &TemplateMetrics) {
    let version = m.version.map_or_else(|| "all versions".to_string(), |v| format!("version {v}"));
    println!("{} ({}), {version}", m.name, m.template);
    for (label, value) in lines(m) {
        println!("  {label:<22} {value}");
    }
    if !m.bottlenecks.is_empty() {
        println!("waiting before completion (longest median first):");
        for w in &m.bottlenecks {
            println!("  {:<22} {}", w.task, durations(&w.wait));
        }
    }
    if !m.approval_delays.is_empty() {
        println!("approval delays:");
        for w in &m.approval_delays {
            println!("  {:<22} {}", w.task, durations(&w.wait));
        }
    }
    let completed: Vec<String> = m.weeks.iter().rev().take(8).rev().map(|w| w.completed.to_string()).collect();
    if !completed.is_empty() {
        println!("completed per week (latest {}): {}", completed.len(), completed.join(" "));
    }
}

fn print_side_by_side(left: &TemplateMetrics, right: &TemplateMetrics) {
    let title = |m: &TemplateMetrics| m.version.map_or_else(|| "all".to_string(), |v| format!("version {v}"));
    println!("{} ({})", left.name, left.template);
    println!("  {:<22} {:<44} {}", "", title(left), title(right));
    // The versions may declare different controls: align the lines by label.
    let (l, r) = (lines(left), lines(right));
    let mut labels: Vec<&String> = l.iter().map(|(k, _)| k).collect();
    labels.extend(r.iter().map(|(k, _)| k).filter(|k| !l.iter().any(|(lk, _)| lk == *k)));
    let value = |side: &[(String, String)], label: &String| {
        side.iter().find(|(k, _)| k == label).map_or_else(|| "-".to_string(), |(_, v)| v.clone())
    };
    for label in labels {
        println!("  {label:<22} {:<44} {}", value(&l, label), value(&r, label));
    }
}
