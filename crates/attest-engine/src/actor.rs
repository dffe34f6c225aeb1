//! Who acts. Every event records its actor with the authority they held at the
//! time, so an auditor can re-check each decision from the events alone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person acting directly (CLI or browser session).
    Person,
    /// An integration acting through an API token.
    Token,
    /// An AI agent acting through its own credentials.
    Agent,
    /// Attest itself: the scheduler's escalations and automatic effects.
    System,
}

/// The acting principal with a snapshot of its workspace authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// The person's email, or the token's or agent's id.
    pub id: String,
    /// Workspace roles held when acting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Workspace admins may act on any task; such acts are recorded as overrides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

impl Actor {
    pub fn person(email: &str, roles: Vec<String>, admin: bool) -> Self {
        Actor { kind: ActorKind::Person, id: email.to_ascii_lowercase(), roles, admin }
    }

    pub fn system() -> Self {
        Actor { kind: ActorKind::System, id: "attest".into(), roles: Vec::new(), admin: false }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ActorKind::Person => f.write_str(&self.id),
            ActorKind::Token => write!(f, "token:{}", self.id),
            ActorKind::Agent => write!(f, "agent:{}", self.id),
            ActorKind::System => write!(f, "system:{}", self.id),
        }
    }
}
