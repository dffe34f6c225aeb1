//! attest-mining
