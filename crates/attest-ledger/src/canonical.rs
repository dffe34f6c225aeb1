//! The ledger's documented entry encoding: RFC 8785 JSON Canonicalization
//! Scheme (JCS).
//!
//! JCS fixes the bytes of a JSON value (object members sorted by their UTF-16
//! code units, no insignificant whitespace, ECMAScript number formatting,
//! minimal string escaping), so a verifier in any language that holds the
//! same value recomputes the same leaf hash.

use serde::Serialize;

use crate::{Hash, leaf_hash};

/// A value that has no RFC 8785 encoding, e.g. a map with non-string keys or
/// a non-finite float.
#[derive(Debug, thiserror::Error)]
#[error("value cannot be encoded as RFC 8785 canonical JSON")]
pub struct CanonicalError(#[source] serde_json::Error);

/// RFC 8785 canonical JSON bytes of `value`.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    // The direct encoder covers every entry the workspace writes; it declines
    // the rest rather than differ from the general one.
    if let Some(bytes) = crate::jcs::to_vec(value) {
        return Ok(bytes);
    }
    serde_json_canonicalizer::to_vec(value).map_err(CanonicalError)
}

/// Leaf hash of the canonical JSON encoding of `value`.
pub fn entry_leaf_hash<T: Serialize>(value: &T) -> Result<Hash, CanonicalError> {
    to_canonical_json(value).map(|bytes| leaf_hash(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rfc8785_example() {
        // RFC 8785 §3.2.3's sample input and its canonical output.
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let value: serde_json::Value = serde_json::from_str(input).expect("sample parses");
        let canonical = to_canonical_json(&value).expect("sample encodes");
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(String::from_utf8(canonical).expect("utf-8"), expected);
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F600 (UTF-16 0xD83D 0xDE00) sorts before U+E000 in UTF-16, though
        // after it by code point and in UTF-8, the order the map iterates in.
        let mut map = BTreeMap::new();
        map.insert("\u{1F600}", 1);
        map.insert("\u{E000}", 2);
        let canonical = to_canonical_json(&map).expect("encodes");
        assert_eq!(String::from_utf8(canonical).expect("utf-8"), "{\"\u{1F600}\":1,\"\u{E000}\":2}");
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        assert!(to_canonical_json(&f64::NAN).is_err());
        assert!(entry_leaf_hash(&[1.5f64]).is_ok());
    }
}
