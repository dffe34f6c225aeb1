//! Refusals: the typed reasons a command is not accepted.

use serde::Serialize;

/// The rule a refusal enforces. The names are stable: the API and the CLI's
/// JSON output expose them, and the metrics count refusals by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    UnknownTask,
    UnknownField,
    FieldNotOnTask,
    InvalidValue,
    RequiredField,
    HiddenTask,
    HiddenField,
    StopTask,
    NotAssignee,
    AlreadyCompleted,
    TaskLocked,
    ApprovalTask,
    NotApprovalTask,
    ApprovalWaits,
    SeparationOfDuties,
    CommentRequired,
    RunNotOpen,
    NotPermitted,
    ReasonRequired,
    TooLarge,
    /// A service task's call is made only once every earlier task is complete.
    ServiceWaits,
    /// Retrying or failing applies only to a service task in that state.
    NotServiceTask,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::UnknownTask => "unknown-task",
            Rule::UnknownField => "unknown-field",
            Rule::FieldNotOnTask => "field-not-on-task",
            Rule::InvalidValue => "invalid-value",
            Rule::RequiredField => "required-field",
            Rule::HiddenTask => "hidden-task",
            Rule::HiddenField => "hidden-field",
            Rule::StopTask => "stop-task",
            Rule::NotAssignee => "not-assignee",
            Rule::AlreadyCompleted => "already-completed",
            Rule::TaskLocked => "task-locked",
            Rule::ApprovalTask => "approval-task",
            Rule::NotApprovalTask => "not-approval-task",
            Rule::ApprovalWaits => "approval-waits",
            Rule::SeparationOfDuties => "separation-of-duties",
            Rule::CommentRequired => "comment-required",
            Rule::RunNotOpen => "run-not-open",
            Rule::NotPermitted => "not-permitted",
            Rule::ReasonRequired => "reason-required",
            Rule::TooLarge => "too-large",
            Rule::ServiceWaits => "service-waits",
            Rule::NotServiceTask => "not-service-task",
        }
    }
}

/// A command the engine refused, naming the rule and where it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused: {message}")]
pub struct Refusal {
    pub rule: Rule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The reason in words, without the `refused: ` prefix.
    pub message: String,
}

impl Refusal {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Refusal { rule, task: None, field: None, message: message.into() }
    }

    pub fn on_task(mut self, task: &str) -> Self {
        self.task = Some(task.to_string());
        self
    }

    pub fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }
}
