//! Who acts. Every event records its actor with the authority they held at the
//! time, so an auditor can re-check each decision from the events alone.

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The acting principal with a snapshot of its workspace authority. Every
/// event holds its actor, so the id and roles are shared rather than copied:
/// cloning an actor only counts references. They serialise as a plain string
/// and list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// The person's email, or the token's or agent's id.
    #[serde(with = "shared_str")]
    pub id: Arc<str>,
    /// Workspace roles held when acting.
    #[serde(default, skip_serializing_if = "no_roles", with = "shared_roles")]
    pub roles: Arc<[String]>,
    /// Workspace admins may act on any task; such acts are recorded as overrides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

impl Actor {
    pub fn person(email: &str, roles: Vec<String>, admin: bool) -> Self {
        Actor { kind: ActorKind::Person, id: email.to_ascii_lowercase().into(), roles: roles.into(), admin }
    }

    pub fn system() -> Self {
        // Made once and shared, so that each event of Attest's counts references.
        static SYSTEM: LazyLock<Actor> =
            LazyLock::new(|| Actor { kind: ActorKind::System, id: "attest".into(), roles: Arc::new([]), admin: false });
        SYSTEM.clone()
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

fn no_roles(roles: &Arc<[String]>) -> bool {
    roles.is_empty()
}

pub(crate) mod shared_str {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(deserializer).map(Arc::from)
    }
}

pub(crate) mod shared_opt_str {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Arc<str>>, serializer: S) -> Result<S::Ok, S::Error> {
        value.as_deref().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arc<str>>, D::Error> {
        Option::<String>::deserialize(deserializer).map(|s| s.map(Arc::from))
    }
}

mod shared_roles {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Arc<[String]>, serializer: S) -> Result<S::Ok, S::Error> {
        value.as_ref().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[String]>, D::Error> {
        Vec::<String>::deserialize(deserializer).map(Arc::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_serialises_its_shared_texts_as_plain_ones() {
        let actor = Actor::person("Ann@Example.com", vec!["hr".into(), "it".into()], true);
        let json = serde_json::to_string(&actor).expect("serialises");
        assert_eq!(json, r#"{"kind":"person","id":"ann@example.com","roles":["hr","it"],"admin":true}"#);
        assert_eq!(serde_json::from_str::<Actor>(&json).expect("parses"), actor);
        let system = serde_json::to_string(&Actor::system()).expect("serialises");
        assert_eq!(system, r#"{"kind":"system","id":"attest"}"#);
        assert_eq!(serde_json::from_str::<Actor>(&system).expect("parses"), Actor::system());
    }
}
