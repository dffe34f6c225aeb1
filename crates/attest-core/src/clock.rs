//! The clock, injectable: the outermost layer reads it and passes `now` down.
//!
//! `Clock::System` reads the real time; `Clock::from_env` fixes it from
//! `ATTEST_NOW` (RFC 3339) when set, for the CLI and reproducible tests;
//! `Clock::manual` starts at a given instant and moves only when a test says
//! so (`advance`, `set`), which is how scheduler tests cross days without
//! sleeping. Clones of a manual clock share one time.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(Timestamp),
    Manual(Arc<Mutex<Timestamp>>),
}

impl Clock {
    /// `ATTEST_NOW` when it holds a timestamp, else the system clock.
    pub fn from_env() -> Clock {
        match std::env::var("ATTEST_NOW").ok().and_then(|s| s.parse().ok()) {
            Some(at) => Clock::Fixed(at),
            None => Clock::System,
        }
    }

    pub fn manual(start: Timestamp) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(at) => *at,
            Clock::Manual(at) => *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Moves a manual clock; other clocks ignore it.
    pub fn advance(&self, by: SignedDuration) {
        if let Clock::Manual(at) = self {
            let mut guard = at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *guard = guard.checked_add(by).unwrap_or(*guard);
        }
    }

    /// Sets a manual clock; other clocks ignore it.
    pub fn set(&self, to: Timestamp) {
        if let Clock::Manual(at) = self {
            *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start: Timestamp = "2026-03-06T09:00:00Z".parse().expect("valid");
        let clock = Clock::manual(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(SignedDuration::from_hours(25));
        assert_eq!(clock.now(), "2026-03-07T10:00:00Z".parse::<Timestamp>().expect("valid"));
        let fixed = Clock::Fixed(start);
        fixed.advance(SignedDuration::from_hours(1));
        assert_eq!(fixed.now(), start);
    }
}
