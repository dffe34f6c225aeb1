//! Workflow templates: the `attest/v1` model, its parser and its validator.
//!
//! This crate knows the file format and nothing about runs, storage or HTTP.

pub mod model;

pub use model::*;
