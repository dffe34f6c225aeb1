//! `attest`: the command line and (later) the server, in one binary.
//!
//! Exit codes: 0 success, 1 refused by a rule or a conflict, 2 bad input or usage.

mod cli;
mod commands;
mod demo;
mod metrics_cmd;
mod mine_cmd;
mod output;
mod pack_cmd;

use std::process::ExitCode;

use clap::Parser;

/// Commands and requests allocate many small strings (actors, keys, values);
/// under glibc's allocator malloc was about a third of the engine's
/// instructions, and mimalloc ran the engine-only bench 1.3-1.55x faster in one
/// session (`cargo bench -p attest-core --bench runs`, which uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a process whose reader went away (128 + SIGPIPE), as a
/// shell reports for `attest run list | head -1`.
const CLOSED_PIPE_EXIT: i32 = 141;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
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

/// `println!` panics when stdout is a closed pipe. That is the reader's choice,
/// not a fault: exit quietly instead of printing a panic.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE_EXIT);
        }
        default_hook(info);
    }));
}
