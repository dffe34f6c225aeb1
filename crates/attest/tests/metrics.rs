//! `attest metrics` through the real binary, over runs with known timings
//! (the clock set per command with `ATTEST_NOW`).

mod common;

use common::*;

const RITA: &str = "rita@example.com";
const IVAN: &str = "ivan@example.com";
const ALICE: &str = "alice@example.com";
const HOUR_MS: u64 = 3_600_000;

const LAPTOP: &str = r#"
format: attest/v1
key: laptop
name: Laptop request
roles: [it, approver]
controls:
  - { id: C-1, name: Shipped laptops are approved }
tasks:
  - key: request
    name: Ask for a laptop
    assignee: starter
    stop: true
    fields:
      - { key: model, label: Model, type: text, required: true }
  - key: ship
    name: Ship the laptop
    assignee: role:it
    controls: [C-1]
    due: { after: task:request, in: 4h }
  - key: approve
    name: Approve shipping
    type: approval
    approves: [ship]
    assignee: role:approver
"#;

/// A command (`request`, `ship`, `reject`, `approve`) at an hour and minute.
type Step = (&'static str, u32, u32);

/// Runs started on 3, 4 and 5 March 2025 at 09:00 that complete after 2h,
/// 4h (one rejection) and 10h (shipping late), and one left open on the 6th.
fn laptop_runs() -> Ws {
    let ws = Ws::new();
    ws.user(RITA, &[]);
    ws.user(IVAN, &["it"]);
    ws.user(ALICE, &["approver"]);
    ws.publish_text("laptop.yaml", LAPTOP);
    let at = |day: u32, hour: u32, minute: u32| format!("2025-03-{day:02}T{hour:02}:{minute:02}:00Z");
    let steps: [(u32, &[Step]); 3] = [
        (3, &[("request", 10, 0), ("ship", 10, 30), ("approve", 11, 0)]),
        (4, &[("request", 10, 0), ("ship", 11, 0), ("reject", 11, 30), ("ship", 12, 0), ("approve", 13, 0)]),
        (5, &[("request", 10, 0), ("ship", 15, 0), ("approve", 19, 0)]),
    ];
    for (day, script) in steps {
        ws.set_now(&at(day, 9, 0));
        let run = ws.start("laptop", RITA);
        for &(what, hour, minute) in script {
            ws.set_now(&at(day, hour, minute));
            match what {
                "request" => ws.json(&["task", "complete", &run, "request", "--as", RITA, "model=standard"]),
                "ship" => ws.json(&["task", "complete", &run, "ship", "--as", IVAN]),
                "reject" => ws.json(&["task", "reject", &run, "approve", "--as", ALICE, "--comment", "wrong model"]),
                _ => ws.json(&["task", "approve", &run, "approve", "--as", ALICE]),
            };
        }
        assert_eq!(ws.status(&run), "completed");
    }
    ws.set_now(&at(6, 9, 0));
    let open = ws.start("laptop", RITA);
    ws.set_now(&at(6, 10, 0));
    ws.json(&["task", "complete", &open, "request", "--as", RITA, "model=standard"]);
    ws.set_now(&at(6, 18, 0));
    ws
}

#[test]
fn metrics_of_a_template_give_the_figures_of_its_runs() {
    let ws = laptop_runs();
    let m = ws.json(&["metrics", "laptop"]);
    assert_eq!(m["runs"]["started"], 4);
    assert_eq!(m["runs"]["completed"], 3);
    assert_eq!(m["completion"]["rate"], 0.75);
    assert_eq!(m["cycle_time"]["median_ms"], 4 * HOUR_MS);
    assert_eq!(m["cycle_time"]["p90_ms"], 10 * HOUR_MS);
    assert_eq!(m["rejections"], 1);
    assert_eq!(m["rework_rate"], 0.25);
    // Shipping is due 4h after the request: on time in A and twice in B, late in C.
    assert_eq!((m["on_time_tasks"]["count"].as_u64(), m["on_time_tasks"]["of"].as_u64()), (Some(3), Some(4)));
    assert_eq!((m["on_time_runs"]["count"].as_u64(), m["on_time_runs"]["of"].as_u64()), (Some(2), Some(3)));
    assert_eq!(m["controls"][0]["id"], "C-1");
    assert_eq!(
        (m["controls"][0]["pass"]["count"].as_u64(), m["controls"][0]["pass"]["of"].as_u64()),
        (Some(2), Some(3))
    );
    // Requests waited 1h each; shipping 30m, 1h and 30m, 5h: median 30m, p90 5h.
    assert_eq!(m["bottlenecks"][0]["task"], "request");
    assert_eq!(m["bottlenecks"][0]["wait"]["median_ms"], HOUR_MS);
    assert_eq!(m["bottlenecks"][1]["task"], "ship");
    assert_eq!(m["bottlenecks"][1]["wait"]["median_ms"], HOUR_MS / 2);
    assert_eq!(m["bottlenecks"][1]["wait"]["p90_ms"], 5 * HOUR_MS);
    assert_eq!(m["approval_delays"][0]["wait"]["max_ms"], 4 * HOUR_MS);
    // The open run's shipping fell due at 14:00.
    assert_eq!(m["overdue"]["tasks"], 1);

    let text = ws.cmd(&["metrics", "laptop"]).ok().stdout;
    assert!(text.contains("median 4h, p90 10h (3 measured)"), "{text}");
    assert!(text.contains("control C-1"), "{text}");

    let tuesday = ws.json(&["metrics", "laptop", "--from", "2025-03-04", "--to", "2025-03-04"]);
    assert_eq!(tuesday["runs"]["started"], 1);
    assert_eq!(tuesday["cycle_time"]["median_ms"], 4 * HOUR_MS);

    let side = ws.json(&["metrics", "laptop", "--version", "1", "--compare", "1"]);
    assert_eq!(side["left"], side["right"]);
    assert!(ws.cmd(&["metrics", "laptop", "--version", "1", "--compare", "1"]).ok().stdout.contains("version 1"));

    let overview = ws.json(&["metrics"]);
    assert_eq!(overview["runs"]["started"], 4);
    assert_eq!(overview["templates"][0]["template"], "laptop");
    assert_eq!(overview["templates"][0]["cycle_time"]["median_ms"], 4 * HOUR_MS);
    assert!(ws.cmd(&["metrics"]).ok().stdout.contains("laptop"));
}

#[test]
fn bad_metrics_input_exits_2() {
    let ws = laptop_runs();
    let bad_date = ws.cmd(&["metrics", "laptop", "--from", "2025-13-01"]).expect_code(2);
    assert!(bad_date.stderr.contains("YYYY-MM-DD"), "{}", bad_date.stderr);
    let backwards = ws.cmd(&["metrics", "laptop", "--from", "2025-03-05", "--to", "2025-03-04"]).expect_code(2);
    assert!(backwards.stderr.contains("ends before it starts"), "{}", backwards.stderr);
    ws.cmd(&["metrics", "no-such-template"]).expect_code(2);
    ws.cmd(&["metrics", "laptop", "--version", "9"]).expect_code(2);
    ws.cmd(&["metrics", "--version", "1"]).expect_code(2);
    ws.cmd(&["metrics", "laptop", "--compare", "2"]).expect_code(2);
}
