//! The process diagram: every task has a box, approvals point at what they
//! approve, stops and conditions are marked, text is escaped, and a run's
//! states are drawn and named.

mod common;

use attest_design::diagram::DiagramOptions;
use attest_design::{TaskMark, diagram_svg, run_diagram_svg};
use attest_engine::view::{TaskStatus, TaskView};
use common::{example, parse};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn every_task_of_every_example_has_one_node() {
    for name in
        ["vendor-onboarding", "employee-onboarding", "user-access-review", "invoice-approval", "incident-response"]
    {
        let t = example(name);
        let svg = diagram_svg(&t, &DiagramOptions::default());
        for task in &t.tasks {
            assert_eq!(count(&svg, &format!(r#"id="dg-task-{}""#, task.key)), 1, "{name}: node for {}", task.key);
        }
        assert_eq!(count(&svg, r#"class="node "#), t.tasks.len(), "{name}: no other nodes");
        let edges: usize = t.tasks.iter().map(|t| t.approves.len()).sum();
        assert_eq!(count(&svg, r#"class="approves-edge""#), edges, "{name}: one edge per approved task");
        assert_eq!(count(&svg, r#"class="stop-bar""#), t.tasks[..t.tasks.len() - 1].iter().filter(|t| t.stop).count());
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }
}

#[test]
fn vendor_onboarding_draws_its_approval_stop_and_condition() {
    let svg = diagram_svg(&example("vendor-onboarding"), &DiagramOptions::default());
    assert!(svg.contains(r#"data-from="finance_approval" data-to="request""#), "{svg}");
    assert!(svg.contains(r#"data-from="finance_approval" data-to="security_review""#));
    assert!(svg.contains(r#"class="node task stop" data-task="request""#) || svg.contains(r#"class="node task stop""#));
    assert!(svg.contains(r#"id="dg-task-security_review" class="node task conditional""#), "{svg}");
    assert!(svg.contains("only if personal_data is true"));
    assert!(svg.contains(r#"stroke-dasharray="6 4""#));
    assert!(svg.contains("STOP"));
    // Accessible: an image with a title and a description naming the order.
    assert!(svg.contains(r#"role="img" aria-labelledby="dg-title dg-desc""#));
    assert!(
        svg.contains("<desc id=\"dg-desc\">3 tasks in order: 1. Submit the vendor request (stop); 2. Security review")
    );
}

#[test]
fn the_same_template_draws_the_same_bytes() {
    let t = example("employee-onboarding");
    assert_eq!(diagram_svg(&t, &DiagramOptions::default()), diagram_svg(&t, &DiagramOptions::default()));
}

#[test]
fn names_are_escaped_and_never_become_markup() {
    let t = parse(
        r#"
format: attest/v1
key: esc
name: "Tom & Jerry <script>alert(1)</script>"
tasks:
  - key: a
    name: "<b onclick='x'>bold</b> & co"
    assignee: starter
"#,
    );
    let svg = diagram_svg(&t, &DiagramOptions { id_prefix: "p\"x", link_prefix: Some("#task-"), ..Default::default() });
    assert!(!svg.contains("<script>") && !svg.contains("<b ") && !svg.contains("p\"x"), "{svg}");
    assert!(svg.contains("Tom &amp; Jerry &lt;script&gt;"));
    assert!(svg.contains(r##"<a href="#task-a">"##));
}

#[test]
fn long_names_are_shortened_with_the_full_name_in_the_title() {
    let long = "A very long task name that would never fit into the box of the diagram";
    let t = parse(&format!(
        "format: attest/v1\nkey: long\nname: Long\ntasks:\n  - key: a\n    name: {long}\n    assignee: starter\n"
    ));
    let svg = diagram_svg(&t, &DiagramOptions::default());
    assert!(svg.contains(&format!("<title>{long} (task), starter</title>")));
    assert!(svg.contains("…</text>"));
}

fn view(key: &str, status: TaskStatus) -> TaskView {
    TaskView {
        key: key.into(),
        name: key.into(),
        approval: false,
        status,
        stop: false,
        assignees: vec![],
        due_at: None,
        overdue: false,
        waits_for: None,
        completed_by: None,
        completed_at: None,
        decision: None,
        rework_count: 0,
        service_error: None,
    }
}

#[test]
fn the_run_overlay_marks_each_state_and_names_it() {
    let t = example("vendor-onboarding");
    let mut done = view("request", TaskStatus::Done);
    done.completed_by = Some("rita@example.com".into());
    let mut overdue = view("security_review", TaskStatus::Open);
    overdue.overdue = true;
    let mut waiting = view("finance_approval", TaskStatus::Open);
    waiting.waits_for = Some("security_review".into());
    let views = vec![done, overdue, waiting];
    let svg = run_diagram_svg(&t, &views, &DiagramOptions::default());
    assert!(svg.contains(r#"class="node task stop done""#), "{svg}");
    assert!(svg.contains(r#"class="node task conditional overdue""#));
    assert!(svg.contains(r#"class="node approval conditional waiting""#));
    assert!(svg.contains("done by rita@example.com"));
    assert!(svg.contains("waiting for security_review"));
    assert!(svg.contains(r#"stroke-width="3""#), "overdue is drawn heavier, not only in another colour");
    for mark in ["done", "open", "waiting", "rework", "overdue", "skipped"] {
        assert!(svg.contains(&format!(">{mark}</text>")), "legend names {mark}");
    }
    assert!(svg.contains("3. Finance approval (approval of request, security_review) (only if"));
}

#[test]
fn marks_follow_the_engine_views() {
    let mut v = view("x", TaskStatus::Rework);
    assert_eq!(TaskMark::of(&v), TaskMark::Rework);
    v.overdue = true;
    assert_eq!(TaskMark::of(&v), TaskMark::Overdue);
    assert_eq!(TaskMark::of(&view("x", TaskStatus::Hidden)), TaskMark::Skipped);
    assert_eq!(TaskMark::of(&view("x", TaskStatus::Done)), TaskMark::Done);
}

#[test]
fn a_narrow_diagram_shortens_names_and_wraps_its_legend() {
    let t = example("employee-onboarding");
    let wide = diagram_svg(&t, &DiagramOptions::default());
    let narrow = diagram_svg(&t, &DiagramOptions { node_width: 240, ..Default::default() });
    let width = |svg: &str| {
        let at = svg.find(r#"viewBox="0 0 "#).map(|i| i + 13).unwrap_or(0);
        svg[at..].split(' ').next().and_then(|w| w.parse::<i32>().ok()).unwrap_or(0)
    };
    assert!(width(&narrow) + 80 <= width(&wide), "{} vs {}", width(&narrow), width(&wide));
    // "Complete security awareness training" no longer fits on one line, but
    // "Request the new hire" still does beside its STOP badge.
    assert!(wide.contains(">Complete security awareness training</text>"));
    assert!(narrow.contains(">Complete security awa") && !narrow.contains(">Complete security awareness training<"));
    assert!(narrow.contains(">Request the new hire</text>"), "{narrow}");
    let legend_rows = |svg: &str| {
        let legend = &svg[svg.find(r#"class="legend""#).unwrap_or(0)..];
        let mut ys: Vec<&str> =
            legend.split("translate(").skip(1).filter_map(|s| s.split(')').next()?.split(',').nth(1)).collect();
        ys.dedup();
        ys.len()
    };
    assert!(legend_rows(&narrow) > legend_rows(&wide), "the legend wraps instead of running off the drawing");
}
