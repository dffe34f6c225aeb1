//! The shipped examples and the design's own example parse and validate.

mod common;

use attest_template::{Assignee, Condition, FieldKind, Op, SourceFormat, TaskType, parse, validate, warnings};
use common::{examples, render};

/// The example from the format's design document, verbatim.
const SPEC_EXAMPLE: &str = r#"format: attest/v1
key: vendor-onboarding            # stable id: lowercase letters, digits, '-'
name: Vendor onboarding
description: Every new vendor is reviewed before the first purchase order.
owner: role:procurement-lead      # accountable for the process
policy: { id: POL-007, title: Vendor risk management, clause: "3.2" }
roles: [requester, procurement-lead, security, finance-approver]
controls:
  - id: VR-01
    name: Vendors that handle personal data pass a security review
    frameworks: ["SOC2:CC9.2", "ISO27001:A.5.19"]
tasks:
  - key: request
    name: Submit the vendor request
    assignee: starter
    stop: true                    # nothing after it can be completed before it is
    instructions: |
      Attach the signed contract. Use the vendor's legal name.
    fields:
      - { key: vendor_name, label: Vendor legal name, type: text, required: true, max_length: 120 }
      - { key: annual_spend, label: Expected annual spend (USD), type: number, required: true, min: 0 }
      - { key: personal_data, label: Handles personal data, type: checkbox }
      - { key: contract, label: Signed contract, type: file, required: true, accept: [pdf] }
  - key: security_review
    name: Security review
    assignee: role:security
    show_when: { field: personal_data, op: is, value: true }
    controls: [VR-01]
    due: { after: task:request, in: 3d, business_days: true }
    escalate:
      - { overdue_by: 1d, notify: role:procurement-lead }
      - { overdue_by: 3d, reassign: role:procurement-lead }
    fields:
      - { key: risk, label: Risk rating, type: select, options: [low, medium, high], required: true }
      - { key: report, label: Assessment report, type: file, required: true }
  - key: finance_approval
    name: Finance approval
    type: approval
    approves: [request, security_review]
    assignee: role:finance-approver
    show_when: { any: [ { field: annual_spend, op: gt, value: 10000 }, { field: risk, op: is, value: high } ] }
"#;

#[test]
fn the_design_example_parses_into_the_expected_model() {
    let t = parse(SPEC_EXAMPLE, SourceFormat::Yaml, Some("spec.yaml")).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(t.key, "vendor-onboarding");
    assert_eq!(t.owner, Some(Assignee::Role("procurement-lead".into())));
    assert_eq!(t.tasks.len(), 3);
    let request = &t.tasks[0];
    assert!(request.stop);
    assert_eq!(request.assignee, Assignee::Starter);
    assert_eq!(request.instructions.as_deref(), Some("Attach the signed contract. Use the vendor's legal name.\n"));
    assert!(matches!(
        &request.fields[0].kind,
        FieldKind::Text(r) if r.max_length == Some(120)
    ));
    assert!(matches!(&request.fields[3].kind, FieldKind::File(r) if r.accept == ["pdf"]));
    let review = &t.tasks[1];
    assert_eq!(review.escalate.len(), 2);
    assert!(review.due.as_ref().is_some_and(|d| d.business_days));
    let approval = &t.tasks[2];
    assert_eq!(approval.task_type, TaskType::Approval);
    assert_eq!(approval.approves, ["request", "security_review"]);
    match &approval.show_when {
        Some(Condition::Any { any }) => {
            assert!(matches!(&any[0], Condition::Compare { op: Op::Gt, .. }));
        }
        other => panic!("unexpected condition {other:?}"),
    }
    // The design example leaves nothing unused either.
    assert!(warnings(&t).is_empty());
}

#[test]
fn every_example_parses_and_validates() {
    let all = examples();
    for (name, src) in &all {
        assert!(name.ends_with(".yaml"), "{name} is not a YAML file");
        let t = parse(src, SourceFormat::Yaml, Some(name)).unwrap_or_else(|d| panic!("{name}:\n{}", render(&d)));
        assert!(validate(&t).is_ok(), "{name}");
        assert_eq!(format!("{}.yaml", t.key), *name, "an example's key matches its file name");
        assert!(warnings(&t).is_empty(), "{name}: {:?}", warnings(&t));
    }
    assert!(all.len() >= 5, "only {} examples", all.len());
}

#[test]
fn the_named_examples_exist_with_their_task_counts() {
    let all = examples();
    let count = |file: &str| {
        let (_, src) = all.iter().find(|(n, _)| n == file).unwrap_or_else(|| panic!("{file} is missing"));
        parse(src, SourceFormat::Yaml, None).map(|t| t.tasks.len()).unwrap_or(0)
    };
    // The engine benchmark runs the employee onboarding example as its 10-task case.
    assert_eq!(count("employee-onboarding.yaml"), 10);
    assert!(count("vendor-onboarding.yaml") >= 3);
    assert!(count("user-access-review.yaml") >= 3);
    assert!(count("invoice-approval.yaml") >= 3);
    assert!(count("incident-response.yaml") >= 3);
}

/// The web UI tests drive the vendor example with the design's keys.
#[test]
fn the_vendor_example_keeps_the_design_keys() {
    let (_, src) = examples().into_iter().find(|(n, _)| n == "vendor-onboarding.yaml").expect("vendor example");
    let t = parse(&src, SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("{}", render(&d)));
    let keys: Vec<&str> = t.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["request", "security_review", "finance_approval"]);
    for field in ["vendor_name", "annual_spend", "personal_data", "contract", "risk", "report"] {
        assert!(t.field(field).is_some(), "{field}");
    }
    // Only the design's fields are required, so its scripts still complete runs.
    let required: Vec<&str> = t.fields().filter(|(_, f)| f.required).map(|(_, f)| f.key.as_str()).collect();
    assert_eq!(required, ["vendor_name", "annual_spend", "contract", "risk", "report"]);
}

/// Every approval in the examples can be given by someone other than the
/// person who completed what it approves.
#[test]
fn example_approvals_are_assigned_apart_from_their_subjects() {
    for (name, src) in examples() {
        let t = parse(&src, SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("{}", render(&d)));
        for task in t.tasks.iter().filter(|t| t.task_type == TaskType::Approval) {
            for subject in &task.approves {
                let subject = t.task(subject).expect("subject exists");
                assert_ne!(
                    subject.assignee, task.assignee,
                    "{name}: '{}' approves '{}' with the same assignee",
                    task.key, subject.key
                );
            }
        }
    }
}

/// The complete templates shown in the format documentation are valid.
#[test]
fn the_documented_templates_are_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/template-format.md");
    let doc = std::fs::read_to_string(path).expect("format documentation");
    let blocks: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|block| block.starts_with("format: attest/v1"))
        .collect();
    assert!(!blocks.is_empty());
    for block in blocks {
        if let Err(d) = parse(block, SourceFormat::Yaml, Some("doc.yaml")) {
            panic!("{}\n{block}", render(&d));
        }
    }
}
