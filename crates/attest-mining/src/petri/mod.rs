//! Place/transition Petri nets: the model, a PNML reader and token-based replay.

mod pnml;
mod replay;

use serde::Serialize;

pub use pnml::{PnmlError, read_pnml, read_pnml_file};
pub use replay::{ReplayResult, TraceReplay, token_replay};

/// A place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The PNML id.
    pub id: String,
    /// The display name (the id when the PNML gives none).
    pub name: String,
}

/// A transition; an invisible (silent) one has no label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The PNML id.
    pub id: String,
    /// The display name (the id when the PNML gives none).
    pub name: String,
    /// The activity it stands for; `None` for an invisible transition.
    pub label: Option<String>,
}

/// An end of an arc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Node {
    /// Index into [`PetriNet::places`].
    Place(usize),
    /// Index into [`PetriNet::transitions`].
    Transition(usize),
}

/// A weighted arc between a place and a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arc {
    /// Where the arc starts.
    pub source: Node,
    /// Where the arc ends.
    pub target: Node,
    /// Tokens moved along it.
    pub weight: u64,
}

/// A place/transition net with its initial and final markings.
///
/// Markings hold the token count of each place, indexed like `places`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PetriNet {
    /// The places.
    pub places: Vec<Place>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    /// The arcs; each joins a place and a transition.
    pub arcs: Vec<Arc>,
    /// Tokens per place at the start.
    pub initial_marking: Vec<u64>,
    /// Tokens per place that a complete case should leave.
    pub final_marking: Vec<u64>,
}

impl PetriNet {
    /// Adds a place and returns its index (markings grow with it).
    pub fn add_place(&mut self, id: impl Into<String>) -> usize {
        let id = id.into();
        self.places.push(Place { name: id.clone(), id });
        self.initial_marking.push(0);
        self.final_marking.push(0);
        self.places.len() - 1
    }

    /// Adds a transition (invisible when `label` is `None`) and returns its index.
    pub fn add_transition(&mut self, id: impl Into<String>, label: Option<&str>) -> usize {
        let id = id.into();
        self.transitions.push(Transition {
            name: label.map_or_else(|| id.clone(), str::to_owned),
            id,
            label: label.map(str::to_owned),
        });
        self.transitions.len() - 1
    }

    /// Adds an arc of weight 1 from place to transition.
    pub fn arc_to_transition(&mut self, place: usize, transition: usize) {
        self.arcs.push(Arc { source: Node::Place(place), target: Node::Transition(transition), weight: 1 });
    }

    /// Adds an arc of weight 1 from transition to place.
    pub fn arc_to_place(&mut self, transition: usize, place: usize) {
        self.arcs.push(Arc { source: Node::Transition(transition), target: Node::Place(place), weight: 1 });
    }

    /// Number of invisible transitions.
    pub fn invisible_count(&self) -> usize {
        self.transitions.iter().filter(|transition| transition.label.is_none()).count()
    }
}
