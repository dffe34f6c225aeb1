//! Design-time views of templates for the people who write and review them:
//! the process diagram as SVG drawn on the server ([`diagram`]), optionally
//! with a run's task states laid over it, and the difference between two
//! versions of a template ([`diff`]).
//!
//! Pure functions over the template model: no IO, no clock, no HTTP. The
//! output is deterministic, so the same template always draws the same bytes.

pub mod diagram;
pub mod diff;
mod text;

pub use diagram::{TaskMark, diagram_svg, run_diagram_svg};
pub use diff::{Change, ChangeKind, LineDiff, LineOp, TemplateDiff, diff_templates, line_diff};
pub use text::condition_text;
