//! Content hash stability, serialisation round trips and robustness.

mod common;

use attest_template::{MAX_TEMPLATE_BYTES, SourceFormat, Template, content_hash, parse, to_json_pretty, to_yaml};
use common::{examples, render, valid};
use proptest::prelude::*;

/// A template that uses every field type, every validation key and every
/// kind of condition, so that the round trips cover the whole model.
const EVERYTHING: &str = r#"format: attest/v1
key: everything
name: Every part of the format
description: Used by the tests only.
owner: user:Owner@Example.com
policy: { id: POL-1, title: A policy, clause: "1.2", url: https://example.com/policy }
roles: [clerk, boss]
controls:
  - { id: C-1, name: First control, frameworks: ["SOC2:CC1.1", "ISO27001:A.5.1"] }
tasks:
  - key: first
    name: First
    assignee: starter
    stop: true
    instructions: |
      Two lines
      of Markdown.
    controls: [C-1]
    due: { after: run_started, in: 90m }
    remind: [ { before_due: 30m } ]
    escalate: [ { overdue_by: 1h, notify: role:boss }, { overdue_by: 2h, reassign: user:boss@example.com } ]
    fields:
      - { key: t, label: Text, type: text, min_length: 1, max_length: 10, pattern: "[a-z]+", default: abc, help: Lowercase. }
      - { key: ta, label: Textarea, type: textarea, required: true }
      - { key: n, label: Number, type: number, min: -1.5, max: 1000, decimals: 2, default: 12.5 }
      - { key: e, label: Email, type: email, allow_domains: [example.com], block_domains: [bad.example.com] }
      - { key: u, label: Url, type: url, default: "https://example.com/x" }
      - { key: d, label: Date, type: date, not_before: 2025-01-31, not_after: run_started+30d, default: "2025-02-01" }
      - { key: dt, label: Datetime, type: datetime, not_before: field:d-1w, default: "2025-02-01T09:30:00Z" }
      - { key: s, label: Select, type: select, options: [low, "yes", "3.2", high], default: "yes" }
      - { key: m, label: Multi, type: multi_choice, options: [a, b, c], default: [a, c] }
      - { key: c, label: Checkbox, type: checkbox, default: true }
      - { key: who, label: Members, type: members, multiple: true }
      - { key: f, label: File, type: file, accept: [pdf, png], max_size_mb: 5 }
      - key: tb
        label: Table
        type: table
        max_rows: 3
        columns:
          - { key: item, label: Item, type: text, required: true }
          - { key: qty, label: Quantity, type: number }
          - { key: on, label: On, type: date }
          - { key: ok, label: Ok, type: checkbox }
        default: [ { item: pen, qty: 2, on: "2025-01-01", ok: true } ]
      - { key: h, label: Hidden, type: hidden, default: "crm:4711" }
      - { key: later, label: Shown late, type: text, show_when: { not: { field: c, op: is, value: false } } }
  - key: second
    name: Second
    type: approval
    approves: [first]
    assignee: field:who
    show_when:
      all:
        - { field: n, op: gte, value: 10 }
        - { field: d, op: lt, value: "2026-01-01" }
        - { field: dt, op: gt, value: "2025-01-01T00:00:00+01:00" }
        - any:
            - { field: m, op: contains, value: b }
            - { field: tb, op: contains, value: pen }
            - { field: who, op: contains, value: ana@example.com }
            - { field: ta, op: contains, value: urgent }
            - { field: f, op: has_value }
            - { field: u, op: has_no_value }
            - { field: s, op: is_not, value: low }
            - { field: m, op: is, value: b }
            - { field: e, op: is, value: x@example.com }
            - { field: h, op: is, value: "crm:4711" }
    due: { after: field:d, in: 2w, business_days: true }
"#;

fn all_sources() -> Vec<(String, String)> {
    let mut all = examples();
    all.push(("everything.yaml".into(), EVERYTHING.into()));
    all
}

#[test]
fn the_everything_template_is_valid() {
    let t = valid(EVERYTHING);
    assert_eq!(t.tasks[0].fields.len(), 15);
    assert_eq!(t.owner.map(|o| o.to_string()).as_deref(), Some("user:owner@example.com"));
}

#[test]
fn json_round_trip_gives_an_equal_template() {
    for (name, src) in all_sources() {
        let t = valid(&src);
        let json = to_json_pretty(&t);
        let back = parse(&json, SourceFormat::Json, Some("back.json"))
            .unwrap_or_else(|d| panic!("{name}:\n{}\n{json}", render(&d)));
        assert_eq!(back, t, "{name}");
        assert_eq!(content_hash(&back), content_hash(&t), "{name}");
    }
}

#[test]
fn yaml_round_trip_gives_an_equal_template() {
    for (name, src) in all_sources() {
        let t = valid(&src);
        let yaml = to_yaml(&t);
        let back = parse(&yaml, SourceFormat::Yaml, Some("back.yaml"))
            .unwrap_or_else(|d| panic!("{name}:\n{}\n{yaml}", render(&d)));
        assert_eq!(back, t, "{name}");
    }
}

/// The model's serde shape is the file format: plain serde_json reads what
/// it writes, as the engine does with stored versions.
#[test]
fn plain_serde_reads_serialised_templates() {
    for (name, src) in all_sources() {
        let t = valid(&src);
        let text = serde_json::to_string(&t).expect("serialises");
        let back: Template = serde_json::from_str(&text).expect("deserialises");
        assert_eq!(back, t, "{name}");
    }
}

#[test]
fn hash_has_the_documented_form() {
    let t = valid(EVERYTHING);
    let hash = content_hash(&t);
    let hex = hash.strip_prefix("sha256:").expect("prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(content_hash(&t), hash, "the hash is deterministic");
}

#[test]
fn yaml_and_hand_written_json_hash_the_same() {
    let yaml = r#"# A comment that does not count.
format: attest/v1
key: tiny
name: Tiny
roles: [clerk]
tasks:
  - key: a
    name: A
    assignee: role:clerk
    fields:
      - { key: amount, label: Amount, type: number, min: 0, max: 100.0 }
      - { key: kind, label: Kind, type: select, options: [x, y] }
  - key: b
    name: B
    assignee: starter
    show_when: { field: amount, op: gt, value: 10.0 }
"#;
    // Different key order, spacing and number spelling; the same content.
    let json = r#"{"tasks": [
        {"fields": [{"type": "number", "max": 100, "min": 0.0, "label": "Amount", "key": "amount"},
                    {"options": ["x", "y"], "type": "select", "key": "kind", "label": "Kind"}],
         "assignee": "role:clerk", "name": "A", "key": "a"},
        {"show_when": {"value": 10, "op": "gt", "field": "amount"}, "assignee": "starter", "name": "B", "key": "b"}
      ],
      "roles": ["clerk"], "name": "Tiny", "key": "tiny", "format": "attest/v1"}"#;
    let from_yaml = valid(yaml);
    let from_json = parse(json, SourceFormat::Json, None).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(content_hash(&from_yaml), content_hash(&from_json));
    for (name, src) in all_sources() {
        let t = valid(&src);
        let again = parse(&to_json_pretty(&t), SourceFormat::Json, None).expect("json form");
        assert_eq!(content_hash(&again), content_hash(&t), "{name}");
    }
}

#[test]
fn formatting_and_comments_do_not_change_the_hash() {
    let (_, src) = examples().into_iter().find(|(n, _)| n == "vendor-onboarding.yaml").expect("vendor example");
    let original = content_hash(&valid(&src));
    // Comments, blank lines, trailing spaces, quoting and flow versus block style.
    let reformatted = src
        .replace("name: Vendor onboarding\n", "# Renamed? No.\n\nname:   \"Vendor onboarding\"   \n")
        .replace(
            "roles: [requester, procurement-lead, security, finance-approver]",
            "roles:\n  - requester\n  - 'procurement-lead'\n  - security   # reviews vendors\n  - finance-approver",
        )
        .replace("in: 3d, business_days: true", "business_days: true, in: 3d");
    assert_ne!(reformatted, src);
    assert_eq!(content_hash(&valid(&reformatted)), original);
    // The same content written as YAML by the serialiser.
    assert_eq!(content_hash(&valid(&to_yaml(&valid(&src)))), original);
}

#[test]
fn any_content_change_changes_the_hash() {
    let (_, src) = examples().into_iter().find(|(n, _)| n == "vendor-onboarding.yaml").expect("vendor example");
    let original = content_hash(&valid(&src));
    let changes = [
        ("name: Vendor onboarding\n", "name: Vendor onboarding.\n"),
        ("max_length: 120", "max_length: 121"),
        ("options: [low, medium, high]", "options: [low, high, medium]"),
        ("in: 3d, business_days: true", "in: 3d"),
        ("{ overdue_by: 1d, notify", "{ overdue_by: 2d, notify"),
        ("type: checkbox }", "type: checkbox, required: true }"),
        ("value: 10000 }", "value: 10001 }"),
        ("Attach the signed contract.", "Attach the contract."),
    ];
    for (from, to) in changes {
        assert!(src.contains(from), "{from}");
        let changed = src.replacen(from, to, 1);
        assert_ne!(content_hash(&valid(&changed)), original, "{from} -> {to}");
    }
}

#[test]
fn oversized_sources_are_refused_before_parsing() {
    let mut src = String::from("format: attest/v1\n");
    while src.len() <= MAX_TEMPLATE_BYTES {
        src.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    for format in [SourceFormat::Yaml, SourceFormat::Json] {
        let diags = parse(&src, format, Some("big.yaml")).expect_err("too big");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("at most 1048576 bytes (1 MiB)"), "{}", diags[0]);
        assert_eq!(diags[0].to_string(), format!("big.yaml: {}", diags[0].message));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        for format in [SourceFormat::Yaml, SourceFormat::Json] {
            if let Err(diags) = parse(&text, format, None) {
                prop_assert!(!diags.is_empty());
            }
        }
    }

    /// Damaging a real template reaches the deeper checks and the locator.
    #[test]
    fn damaged_examples_never_panic(
        which in 0usize..6,
        at in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in "[ -~\n]{0,20}",
    ) {
        let sources = all_sources();
        let (_, src) = &sources[which % sources.len()];
        let start = at.index(src.len());
        let end = (start + len).min(src.len());
        if src.is_char_boundary(start) && src.is_char_boundary(end) {
            let damaged = format!("{}{}{}", &src[..start], insert, &src[end..]);
            if let Err(diags) = parse(&damaged, SourceFormat::Yaml, None) {
                prop_assert!(!diags.is_empty());
            }
            if let Ok(t) = valid_or_none(&damaged) {
                prop_assert!(content_hash(&t).starts_with("sha256:"));
                prop_assert!(parse(&to_yaml(&t), SourceFormat::Yaml, None).is_ok());
            }
        }
    }
}

fn valid_or_none(src: &str) -> Result<Template, ()> {
    parse(src, SourceFormat::Yaml, None).map_err(|_| ())
}
