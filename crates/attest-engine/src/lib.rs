//! The engine: commands in, events out, state = fold(template version, events).
//!
//! Pure and deterministic. It does no IO and reads no clock: the caller passes
//! `now`, the actor with its authority, and the template version. The same
//! events over the same template always fold to the same state, which is what
//! lets an auditor re-execute a run offline.

pub mod actor;
pub mod compiled;
pub mod condition;
pub mod decide;
pub mod due;
pub mod event;
pub mod refusal;
pub mod state;
pub mod value;
pub mod view;
pub mod workspace;

pub use actor::{Actor, ActorKind};
pub use compiled::CompiledTemplate;
pub use decide::{Command, due_service_tasks, execute, execute_owned, field_problems};
pub use event::{Event, EventBody, FileRef, Values};
pub use refusal::{Refusal, Rule};
pub use state::{ApplyError, Decision, RunState, RunStatus, TaskState};
pub use workspace::{WorkspaceEvent, WorkspaceEventBody};
