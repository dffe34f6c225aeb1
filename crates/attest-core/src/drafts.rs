//! Template drafts: the editor's work in progress.
//!
//! A draft is a template's YAML text that has the model's shape (it reads)
//! but need not pass the validator yet, so a process owner can save half a
//! process. Drafts live behind [`DraftStore`], outside the ledger; only
//! publishing one writes a fact, through [`Workspace::publish`], which
//! validates it again.

use attest_engine::Actor;
use attest_store::{DraftRow, DraftSave, DraftStore};
use attest_template::{Diagnostic, SourceFormat, Template};
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::workspace::{PublishOutcome, Workspace};

/// Most drafts a workspace keeps, so the table cannot grow without bound.
pub const MAX_DRAFTS: u64 = 500;

/// What a new draft starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftStart {
    /// An empty process with one task.
    Blank { key: String, name: String },
    /// A published version (the latest when `None`).
    Version { key: String, version: Option<u32> },
}

/// What checking a draft found: problems that block publishing, and advice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DraftCheck {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl DraftCheck {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Workspace {
    /// Creates a draft and returns it.
    pub fn create_draft(
        &self,
        drafts: &dyn DraftStore,
        by: &Actor,
        start: &DraftStart,
        now: Timestamp,
    ) -> Result<DraftRow> {
        if drafts.draft_count()? >= MAX_DRAFTS {
            return Err(Error::BadInput(format!(
                "the workspace holds {MAX_DRAFTS} drafts, the most it keeps; publish or discard some first"
            )));
        }
        let (template, base_version) = match start {
            DraftStart::Blank { key, name } => {
                let template = blank(key.trim(), name.trim());
                // A new process needs a usable key and name before anything is stored.
                attest_template::validate(&template).map_err(Error::InvalidTemplate)?;
                if self.store().template_version(&template.key, None)?.is_some() {
                    return Err(Error::InvalidTemplate(vec![attest_template::Diagnostic {
                        file: None,
                        line: None,
                        column: None,
                        path: "key".into(),
                        message: format!(
                            "a template with key '{}' exists; open it and choose \"Edit\" to draft its next version",
                            template.key
                        ),
                    }]));
                }
                (template, None)
            }
            DraftStart::Version { key, version } => {
                let row = self.template_row(key, *version)?;
                let template: Template = serde_json::from_str(&row.json).map_err(|e| {
                    Error::Other(anyhow::anyhow!("stored template {key} v{} is unreadable: {e}", row.version))
                })?;
                (template, Some(row.version))
            }
        };
        let row = DraftRow {
            id: uuid::Uuid::now_v7().to_string(),
            template_key: template.key.clone(),
            name: template.name.clone(),
            base_version,
            source: attest_template::to_yaml(&template),
            revision: 1,
            created_by: by.id.to_string(),
            created_at: now,
            updated_by: by.id.to_string(),
            updated_at: now,
        };
        drafts.create_draft(&row)?;
        Ok(row)
    }

    pub fn draft(&self, drafts: &dyn DraftStore, id: &str) -> Result<DraftRow> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 {
            return Err(Error::BadInput(format!("'{id}' is not a draft id")));
        }
        drafts
            .draft(id)?
            .ok_or_else(|| Error::NotFound(format!("no draft with id {id}; it may have been published or discarded")))
    }

    /// Saves new YAML text for a draft edited at `revision` and returns the
    /// new revision. Text that does not read as a template (a syntax error,
    /// a wrong type, an unknown key) is refused with its place and nothing is
    /// stored; a draft that reads but does not validate yet is saved.
    pub fn save_draft(
        &self,
        drafts: &dyn DraftStore,
        by: &Actor,
        id: &str,
        revision: u64,
        source: &str,
        now: Timestamp,
    ) -> Result<u64> {
        let template = read_draft(source)?;
        let save = DraftSave { template_key: &template.key, name: &template.name, source, by: &by.id, at: now };
        Ok(drafts.save_draft(id, revision, &save)?)
    }

    /// Every problem the validator finds in a draft, located by path and,
    /// for the draft's text, by line.
    pub fn check_draft(source: &str) -> DraftCheck {
        match attest_template::parse(source, SourceFormat::Yaml, None) {
            Ok(t) => DraftCheck { errors: Vec::new(), warnings: attest_template::warnings(&t) },
            Err(errors) => DraftCheck { errors, warnings: Vec::new() },
        }
    }

    /// Publishes a draft edited at `revision` as the template's next version
    /// and discards the draft. An invalid draft is refused with every
    /// problem and nothing is published.
    pub fn publish_draft(
        &self,
        drafts: &dyn DraftStore,
        by: &Actor,
        id: &str,
        revision: u64,
        now: Timestamp,
    ) -> Result<PublishOutcome> {
        let draft = self.draft(drafts, id)?;
        if draft.revision != revision {
            return Err(Error::Conflict(format!(
                "the draft was saved by someone else since you opened it (revision {}, you saw {revision}); review it and publish again",
                draft.revision
            )));
        }
        let template =
            attest_template::parse(&draft.source, SourceFormat::Yaml, None).map_err(Error::InvalidTemplate)?;
        let outcome = self.publish(by, template, now)?;
        // The version is in the ledger; a draft left behind by a failed delete
        // would only publish as "unchanged" again.
        drafts.delete_draft(&draft.id)?;
        Ok(outcome)
    }

    pub fn discard_draft(&self, drafts: &dyn DraftStore, id: &str) -> Result<()> {
        self.draft(drafts, id)?;
        Ok(drafts.delete_draft(id.trim())?)
    }
}

/// Reads a draft's text for its shape, or says where it does not read.
pub fn read_draft(source: &str) -> Result<Template> {
    attest_template::read_shape(source, SourceFormat::Yaml).map_err(|d| Error::InvalidTemplate(vec![d]))
}

/// The smallest process: one task for whoever starts a run.
fn blank(key: &str, name: &str) -> Template {
    Template {
        format: attest_template::FORMAT_V1.to_string(),
        key: key.to_string(),
        name: name.to_string(),
        description: None,
        owner: None,
        policy: None,
        roles: Vec::new(),
        controls: Vec::new(),
        tasks: vec![attest_template::Task {
            key: "request".into(),
            name: "Request".into(),
            task_type: attest_template::TaskType::Task,
            instructions: None,
            assignee: attest_template::Assignee::Starter,
            stop: false,
            approves: Vec::new(),
            show_when: None,
            controls: Vec::new(),
            due: None,
            remind: Vec::new(),
            escalate: Vec::new(),
            http: None,
            fields: Vec::new(),
        }],
    }
}
