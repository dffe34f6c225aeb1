//! Problems found in a template, located as precisely as the source allows.

use std::fmt;

use serde::Serialize;

/// One problem in a template: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file name given to [`crate::parse`], if any.
    pub file: Option<String>,
    /// 1-based line in the source, when known.
    pub line: Option<u32>,
    /// 1-based column in the source, when known.
    pub column: Option<u32>,
    /// Where in the template, like `tasks[2].approves[0]`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { file: None, line: None, column: None, path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: PATH: MESSAGE`, leaving out the parts that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut location = Vec::new();
        if let Some(file) = &self.file {
            location.push(file.clone());
        }
        if let Some(line) = self.line {
            location.push(line.to_string());
            if let Some(column) = self.column {
                location.push(column.to_string());
            }
        }
        if !location.is_empty() {
            write!(f, "{}: ", location.join(":"))?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}
