//! attest-engine
