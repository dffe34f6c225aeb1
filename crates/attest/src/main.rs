//! `attest`: the command line and (later) the server, in one binary.
//!
//! Exit codes: 0 success, 1 refused by a rule or a conflict, 2 bad input or usage.

mod cli;
mod commands;
mod demo;
mod output;
mod pack_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = args.json;
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::report_error(&e, json),
    }
}
