//! The one place that decides access. Every route names an [`Action`] in the
//! route table; the guard authenticates the caller and asks [`authorize`]
//! before any handler runs. Task-level rules (assignee, separation of duties)
//! are the engine's and apply on top.

use attest_engine::Actor;

use crate::problem::Problem;

/// A caller's workspace access level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Admin,
    /// Designs and publishes templates, cancels runs, and works tasks.
    ProcessOwner,
    /// Starts runs and works the tasks assigned to them.
    Member,
    /// Reads everything, exports and verifies, changes nothing.
    Auditor,
}

impl Access {
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "admin" => Some(Access::Admin),
            "process-owner" => Some(Access::ProcessOwner),
            "member" => Some(Access::Member),
            "auditor" => Some(Access::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::ProcessOwner => "process-owner",
            Access::Member => "member",
            Access::Auditor => "auditor",
        }
    }

    /// A person's level from their workspace authority. Admin wins; an
    /// auditor stays read-only even when holding other roles.
    pub fn of_person(admin: bool, roles: &[String]) -> Access {
        if admin {
            Access::Admin
        } else if roles.iter().any(|r| r == "auditor") {
            Access::Auditor
        } else if roles.iter().any(|r| r == "process-owner") {
            Access::ProcessOwner
        } else {
            Access::Member
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session { id_hash: String, csrf: String },
    Token { id: String },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub access: Access,
    pub credential: Credential,
    /// A person on a one-time password may only change it.
    pub must_change_password: bool,
}

impl Principal {
    /// A stable key for per-caller records (idempotency keys).
    pub fn key(&self) -> String {
        self.actor.to_string()
    }

    pub fn is_person(&self) -> bool {
        matches!(self.credential, Credential::Session { .. })
    }
}

/// What a route does, in terms of access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Anyone, signed in or not: logging in, health, the API description.
    Public,
    /// Any signed-in caller, even on a one-time password.
    Session,
    /// A person changing their own password.
    ChangePassword,
    /// Reading templates, runs, the inbox, people.
    Read,
    DesignTemplate,
    StartRun,
    WorkTask,
    CancelRun,
    ManagePeople,
    ManageTokens,
    /// Reading proofs, verifying, exporting.
    Audit,
    SignCheckpoint,
    /// Workspace settings (time zone, SMTP) and the mail outbox.
    ManageWorkspace,
    /// Webhook subscriptions and their delivery log.
    ManageWebhooks,
}

/// The access levels allowed each action (for signed-in callers).
pub fn allowed(action: Action) -> &'static [Access] {
    use Access::*;
    match action {
        Action::Public | Action::Session | Action::Read => &[Admin, ProcessOwner, Member, Auditor],
        Action::ChangePassword => &[Admin, ProcessOwner, Member, Auditor],
        Action::DesignTemplate | Action::CancelRun => &[Admin, ProcessOwner],
        Action::StartRun | Action::WorkTask => &[Admin, ProcessOwner, Member],
        Action::ManagePeople
        | Action::ManageTokens
        | Action::SignCheckpoint
        | Action::ManageWorkspace
        | Action::ManageWebhooks => &[Admin],
        Action::Audit => &[Admin, Auditor],
    }
}

/// Decides whether a caller may perform an action. `None` is anonymous.
pub fn authorize(caller: Option<&Principal>, action: Action) -> Result<(), Problem> {
    if action == Action::Public {
        return Ok(());
    }
    let Some(p) = caller else {
        return Err(Problem::unauthorized("sign in, or send an API token as 'Authorization: Bearer ...'"));
    };
    if action == Action::ChangePassword && !p.is_person() {
        return Err(Problem::forbidden("only a person signed in with a password can change it"));
    }
    if p.must_change_password && !matches!(action, Action::Session | Action::ChangePassword) {
        return Err(Problem::forbidden("you signed in with a one-time password: change it first"));
    }
    if allowed(action).contains(&p.access) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!("{} access does not allow this", p.access.as_str())))
    }
}
