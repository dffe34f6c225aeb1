//! Printing results and errors, as text for people or JSON for machines.

use std::process::ExitCode;

use attest_core::Error;
use serde::Serialize;
use serde_json::json;

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The error a command failed with, kept typed so the exit code follows it.
#[derive(Debug)]
pub enum CliError {
    App(Error),
    Usage(String),
    /// A check failed and already printed its findings.
    Failed,
    Other(anyhow::Error),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::App(e)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(e.into())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Other(e.into())
    }
}

/// Prints the error on stderr and maps it to the exit code contract:
/// 1 for a rule's refusal or a conflict, 2 for bad input, 3 for a fault.
pub fn report_error(e: &CliError, json: bool) -> ExitCode {
    let (code, kind, body) = match e {
        CliError::Usage(m) => (2, "bad_input", json!({ "message": m })),
        CliError::Failed => return ExitCode::from(1),
        CliError::Other(e) => (3, "internal", json!({ "message": format!("{e:#}") })),
        CliError::App(app) => {
            let code = if app.is_bad_input() {
                2
            } else if matches!(app, Error::Other(_)) {
                3
            } else {
                1
            };
            match app {
                Error::Refused(r) => (
                    code,
                    "refused",
                    json!({ "rule": r.rule.name(), "task": r.task, "field": r.field, "message": app.to_string() }),
                ),
                Error::InvalidTemplate(diags) => {
                    (code, "invalid_template", json!({ "message": "the template is not valid", "diagnostics": diags }))
                }
                Error::Conflict(_) => (code, "conflict", json!({ "message": app.to_string() })),
                Error::NotFound(_) => (code, "not_found", json!({ "message": app.to_string() })),
                Error::Other(e) => (code, "internal", json!({ "message": format!("{e:#}") })),
                _ => (code, "bad_input", json!({ "message": app.to_string() })),
            }
        }
    };
    if json {
        let mut body = body;
        body["error"] = json!(kind);
        eprintln!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    } else {
        match e {
            CliError::App(Error::Refused(r)) => eprintln!("refused: {} [rule: {}]", r.message, r.rule.name()),
            CliError::App(app) => eprintln!("error: {app}"),
            CliError::Usage(m) => eprintln!("error: {m}"),
            CliError::Failed => {}
            CliError::Other(e) => eprintln!("error: {e:#}"),
        }
    }
    ExitCode::from(code)
}
