//! The `attest mine` commands: exit codes and outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use attest_mining::cli::{ConformArgs, LogArgs, MineCommand, run};

fn shared(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/logs").join(relative)
}

fn log_args(path: PathBuf) -> LogArgs {
    LogArgs {
        path,
        case_column: "case:concept:name".into(),
        activity_column: "concept:name".into(),
        timestamp_column: None,
    }
}

#[test]
fn commands_succeed_on_good_input_in_text_and_json() {
    for json in [false, true] {
        let stats = MineCommand::Stats(log_args(shared("running-example.xes")));
        assert_eq!(run(&stats, json), ExitCode::SUCCESS);
        let variants = MineCommand::Variants { log: log_args(shared("03_repairExample.xes.gz")), top: 3 };
        assert_eq!(run(&variants, json), ExitCode::SUCCESS);
        let conform = MineCommand::Conform(ConformArgs {
            log: log_args(shared("synthetic/a12/a12f0n10.xes.gz")),
            pnml: Some(shared("synthetic/a12/a12.pnml")),
            template: None,
            map: None,
        });
        assert_eq!(run(&conform, json), ExitCode::SUCCESS);
    }
}

#[test]
fn dfg_writes_an_svg() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("dfg.svg");
    let command = MineCommand::Dfg { log: log_args(shared("roadtraffic100traces.xes")), svg: Some(svg.clone()) };
    assert_eq!(run(&command, false), ExitCode::SUCCESS);
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(text.starts_with("<svg") && text.contains(">Create Fine<"), "{text}");

    let unwritable = MineCommand::Dfg {
        log: log_args(shared("running-example.xes")),
        svg: Some(dir.path().join("missing-dir/dfg.svg")),
    };
    assert_eq!(run(&unwritable, false), ExitCode::FAILURE);
}

#[test]
fn bad_input_exits_with_code_2() {
    let missing = MineCommand::Stats(log_args(PathBuf::from("/nonexistent/log.xes")));
    assert_eq!(run(&missing, false), ExitCode::from(2));

    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("log.csv");
    std::fs::write(&csv, "id,task,when\n1,a,2024-05-01 10:00:00\n1,b,not a time\n").expect("write");
    let mut args = log_args(csv.clone());
    args.case_column = "id".into();
    args.activity_column = "task".into();
    args.timestamp_column = Some("when".into());
    assert_eq!(run(&MineCommand::Stats(args), false), ExitCode::from(2));

    let mut args = log_args(csv);
    args.case_column = "id".into();
    args.activity_column = "task".into();
    assert_eq!(
        run(&MineCommand::Variants { log: args, top: 5 }, true),
        ExitCode::SUCCESS,
        "without --timestamp the CSV reads without times"
    );

    let bad_net = MineCommand::Conform(ConformArgs {
        log: log_args(shared("running-example.xes")),
        pnml: Some(shared("running-example.xes")),
        template: None,
        map: None,
    });
    assert_eq!(run(&bad_net, false), ExitCode::from(2));
    let no_workspace = MineCommand::Conform(ConformArgs {
        log: log_args(shared("running-example.xes")),
        pnml: None,
        template: Some("vendor-onboarding".into()),
        map: None,
    });
    assert_eq!(run(&no_workspace, false), ExitCode::from(2));
}
