//! CSV reader behaviour: column choice, timestamp formats, grouping and errors.

use attest_mining::{CsvError, CsvOptions, ReadLimits, read_csv, summarize};

fn options() -> CsvOptions {
    CsvOptions {
        case_column: "case".into(),
        activity_column: "task".into(),
        timestamp_column: Some("when".into()),
        ..CsvOptions::default()
    }
}

#[test]
fn groups_rows_into_cases_ordered_by_time() {
    let text = "case,task,when,org:resource,amount\n\
                1,b,2024-05-01 10:00:00,Bob,\n\
                2,a,2024-05-01T08:00:00Z,,7\n\
                1,a,2024-05-01T09:00:00+00:00,Ann,12\n\
                1,c,2024-05-01 10:00:00,,\n";
    let log = read_csv(text.as_bytes(), &options()).expect("valid CSV");
    assert_eq!(log.traces.len(), 2);
    let first = &log.traces[0];
    assert_eq!(first.case_id, "1");
    let names: Vec<&str> = first.events.iter().map(|e| log.activity_name(e.activity)).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(first.events[0].resource.as_deref(), Some("Ann"));
    assert_eq!(first.events[0].attributes.len(), 1);
    assert_eq!(&*first.events[0].attributes[0].key, "amount");
    assert_eq!(first.events[0].timestamp_us, Some(1_714_554_000_000_000));
    let summary = summarize(&log);
    assert_eq!((summary.events, summary.variants, summary.dfg_edges), (4, 2, 2));
}

#[test]
fn errors_name_the_line_and_column() {
    let error = read_csv("case,task,when\n1,a,2024-05-01 10:00:00\n,b,2024-05-01 10:00:00\n".as_bytes(), &options())
        .expect_err("empty case");
    assert!(matches!(error, CsvError::MissingCaseId { line: 3, .. }), "{error}");

    let error = read_csv("case,task,when\n1,a,yesterday\n".as_bytes(), &options()).expect_err("bad time");
    assert!(matches!(error, CsvError::BadTimestamp { line: 2, ref value, .. } if value == "yesterday"), "{error}");
    assert!(error.to_string().contains("line 2"));

    let error = read_csv("case,task,when\n1,,2024-05-01 10:00:00\n".as_bytes(), &options()).expect_err("no task");
    assert!(matches!(error, CsvError::MissingActivity { line: 2, .. }), "{error}");

    let error = read_csv("id,task\n1,a\n".as_bytes(), &options()).expect_err("no case column");
    assert!(
        error.to_string().contains("no column named \"case\"") && error.to_string().contains("id, task"),
        "{error}"
    );

    let error = read_csv("case,task,when\n1,a\n".as_bytes(), &options()).expect_err("short row");
    assert!(matches!(error, CsvError::Malformed { line: 2, .. }), "{error}");
}

#[test]
fn optional_timestamp_column_may_be_absent() {
    let options = CsvOptions { timestamp_optional: true, ..options() };
    let log = read_csv("case,task\n1,a\n1,b\n".as_bytes(), &options).expect("no time column");
    assert_eq!(log.traces[0].events.len(), 2);
    assert_eq!(log.traces[0].events[0].timestamp_us, None);
}

#[test]
fn oversized_records_are_refused() {
    let options = CsvOptions { limits: ReadLimits { max_value_bytes: 1024, ..ReadLimits::default() }, ..options() };
    let text = format!("case,task,when\n1,{},2024-05-01 10:00:00\n", "x".repeat(100_000));
    let error = read_csv(text.as_bytes(), &options).expect_err("too long");
    assert!(matches!(error, CsvError::RecordTooLong { limit_bytes: 1024, .. }), "{error}");
}
