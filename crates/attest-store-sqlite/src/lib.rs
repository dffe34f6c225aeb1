//! attest-store-sqlite
