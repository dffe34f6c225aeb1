//! `attest audit export` and `attest verify`: evidence packs.

use std::path::Path;

use attest_core::DataDir;

use crate::output::CliError;

pub fn export(
    _dir: &DataDir,
    _run: Option<String>,
    _from: Option<String>,
    _to: Option<String>,
    _output: &Path,
    _json: bool,
) -> Result<(), CliError> {
    Err(CliError::Usage("evidence packs are not built yet (issue 3)".into()))
}

pub fn verify(_file: &Path, _key: Option<&str>, _json: bool) -> Result<(), CliError> {
    Err(CliError::Usage("evidence packs are not built yet (issue 3)".into()))
}
