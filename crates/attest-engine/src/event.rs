//! Events: the facts a run is made of. The state of a run is a fold of these
//! over its template version, and nothing else.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, shared_str};

/// Values keyed by field key. A `null` clears the field.
pub type Values = BTreeMap<String, serde_json::Value>;

/// One accepted fact about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub by: Actor,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    RunStarted {
        run: String,
        template: String,
        version: u32,
        content_hash: String,
        name: String,
        /// When the whole run is due; absent in runs without a run-level deadline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<Timestamp>,
    },
    FieldsSet {
        task: String,
        values: Values,
    },
    TaskCompleted {
        task: String,
        /// Set when an admin completed a task assigned to someone else.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        overridden: bool,
    },
    TaskApproved {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        overridden: bool,
    },
    TaskRejected {
        task: String,
        comment: String,
        /// The subject tasks sent back for rework.
        reopened: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        overridden: bool,
    },
    /// A completed task sent back to open by a consequence of another change:
    /// its approval was reset, or a changed value left it incomplete.
    TaskReopened {
        task: String,
        cause: String,
    },
    CommentAdded {
        task: String,
        text: String,
    },
    EvidenceAttached {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        file: FileRef,
    },
    TaskReassigned {
        task: String,
        to: String,
        cause: String,
    },
    /// A reminder from the task's `remind` list (`step` counts from 1),
    /// sent by the scheduler before the task falls due.
    TaskReminded {
        task: String,
        step: u32,
    },
    /// A step of the task's `escalate` list (`step` counts from 1), taken by
    /// the scheduler once the task is overdue by the step's `overdue_by`. A
    /// `reassign` step is followed by the `task_reassigned` it causes.
    TaskEscalated {
        task: String,
        step: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reassign: Option<String>,
    },
    RunCompleted {},
    RunCancelled {
        reason: String,
    },
    /// A service task's call failed for good; the error stays on the task
    /// until someone retries it or completes it by hand.
    ServiceFailed {
        task: String,
        error: String,
    },
    /// Someone asked for a failed service task's call to be made again.
    ServiceRetried {
        task: String,
    },
}

impl EventBody {
    /// The event's type name as written in its canonical form.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::RunStarted { .. } => "run_started",
            EventBody::FieldsSet { .. } => "fields_set",
            EventBody::TaskCompleted { .. } => "task_completed",
            EventBody::TaskApproved { .. } => "task_approved",
            EventBody::TaskRejected { .. } => "task_rejected",
            EventBody::TaskReopened { .. } => "task_reopened",
            EventBody::CommentAdded { .. } => "comment_added",
            EventBody::EvidenceAttached { .. } => "evidence_attached",
            EventBody::TaskReassigned { .. } => "task_reassigned",
            EventBody::TaskReminded { .. } => "task_reminded",
            EventBody::TaskEscalated { .. } => "task_escalated",
            EventBody::RunCompleted {} => "run_completed",
            EventBody::RunCancelled { .. } => "run_cancelled",
            EventBody::ServiceFailed { .. } => "service_failed",
            EventBody::ServiceRetried { .. } => "service_retried",
        }
    }

    /// The task the event is about, if any.
    pub fn task(&self) -> Option<&str> {
        match self {
            EventBody::FieldsSet { task, .. }
            | EventBody::TaskCompleted { task, .. }
            | EventBody::TaskApproved { task, .. }
            | EventBody::TaskRejected { task, .. }
            | EventBody::TaskReopened { task, .. }
            | EventBody::CommentAdded { task, .. }
            | EventBody::EvidenceAttached { task, .. }
            | EventBody::TaskReassigned { task, .. }
            | EventBody::TaskReminded { task, .. }
            | EventBody::TaskEscalated { task, .. } => Some(task),
            EventBody::ServiceFailed { task, .. } | EventBody::ServiceRetried { task } => Some(task),
            _ => None,
        }
    }
}

/// A reference to an evidence file stored content-addressed by its SHA-256.
/// Its event and the run's evidence list both hold it, so its texts are
/// shared rather than copied; they serialise as plain strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    #[serde(with = "shared_str")]
    pub name: Arc<str>,
    pub size: u64,
    #[serde(with = "shared_str")]
    pub media_type: Arc<str>,
    /// Lowercase hex SHA-256 of the content.
    #[serde(with = "shared_str")]
    pub sha256: Arc<str>,
}

impl FileRef {
    /// The file reference as a field value: what `serde_json::to_value` gives,
    /// built directly because attaching evidence does it on every attach. It
    /// fills a copy of a map that holds the keys already, since copying the
    /// map skips hashing each key again.
    pub(crate) fn to_value(&self) -> serde_json::Value {
        static KEYS: LazyLock<serde_json::Map<String, serde_json::Value>> = LazyLock::new(|| {
            ["name", "size", "media_type", "sha256"]
                .into_iter()
                .map(|k| (k.to_string(), serde_json::Value::Null))
                .collect()
        });
        let mut map = KEYS.clone();
        let text = |s: &Arc<str>| serde_json::Value::String(String::from(&**s));
        let values = [text(&self.name), self.size.into(), text(&self.media_type), text(&self.sha256)];
        for (slot, value) in map.values_mut().zip(values) {
            *slot = value;
        }
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reference_as_a_value_is_what_serde_gives() {
        let file = FileRef { name: "a.pdf".into(), size: 7, media_type: "application/pdf".into(), sha256: "ab".into() };
        let value = file.to_value();
        assert_eq!(value, serde_json::to_value(&file).expect("serialises"));
        assert_eq!(value.to_string(), serde_json::to_string(&file).expect("serialises"));
    }

    #[test]
    fn a_file_reference_serialises_its_shared_texts_as_plain_ones() {
        let file = FileRef { name: "a.pdf".into(), size: 7, media_type: "application/pdf".into(), sha256: "ab".into() };
        let json = serde_json::to_string(&file).expect("serialises");
        assert_eq!(json, r#"{"name":"a.pdf","size":7,"media_type":"application/pdf","sha256":"ab"}"#);
        assert_eq!(serde_json::from_str::<FileRef>(&json).expect("parses"), file);
    }
}
