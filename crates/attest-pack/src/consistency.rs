//! `consistency.txt`: an RFC 9162 consistency proof as text, in the style of
//! C2SP tlog-proof (which covers inclusion only).
//!
//! ```text
//! attest.dev/consistency-proof@v1
//! old <decimal size>
//! new <decimal size>
//! <base64 hash>             (zero or more, in RFC 9162 order)
//! ```

use attest_ledger::Hash;
use attest_ledger::verify::MAX_CONSISTENCY_PROOF_HASHES;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub const HEADER: &str = "attest.dev/consistency-proof@v1";

/// Largest file accepted: the header, two sizes and the longest proof.
pub const MAX_BYTES: usize = 64 + 2 * 30 + MAX_CONSISTENCY_PROOF_HASHES * 45;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyFile {
    pub old_size: u64,
    pub new_size: u64,
    pub proof: Vec<Hash>,
}

/// Why a consistency file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consistency.txt is malformed: {0}")]
pub struct ConsistencyFileError(&'static str);

impl ConsistencyFile {
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\nold {}\nnew {}\n", self.old_size, self.new_size);
        for hash in &self.proof {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text
    }

    pub fn parse(input: &[u8]) -> Result<Self, ConsistencyFileError> {
        if input.len() > MAX_BYTES {
            return Err(ConsistencyFileError("it is larger than any consistency proof"));
        }
        let text = std::str::from_utf8(input).map_err(|_| ConsistencyFileError("it is not UTF-8"))?;
        let text = text.strip_suffix('\n').ok_or(ConsistencyFileError("it must end with a newline"))?;
        let mut lines = text.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(ConsistencyFileError("the first line must be attest.dev/consistency-proof@v1"));
        }
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(decimal)
            .ok_or(ConsistencyFileError("the second line must be `old N`"))?;
        let new_size = lines
            .next()
            .and_then(|l| l.strip_prefix("new "))
            .and_then(decimal)
            .ok_or(ConsistencyFileError("the third line must be `new N`"))?;
        let proof = lines
            .take(MAX_CONSISTENCY_PROOF_HASHES + 1)
            .map(|line| {
                let bytes = STANDARD.decode(line).map_err(|_| ConsistencyFileError("a hash line is not base64"))?;
                Hash::try_from(bytes.as_slice()).map_err(|_| ConsistencyFileError("a hash line is not 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_CONSISTENCY_PROOF_HASHES {
            return Err(ConsistencyFileError("it has more hashes than any consistency proof"));
        }
        Ok(Self { old_size, new_size, proof })
    }
}

fn decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let file = ConsistencyFile { old_size: 3, new_size: 7, proof: vec![[1; 32], [2; 32]] };
        assert_eq!(ConsistencyFile::parse(file.to_text().as_bytes()), Ok(file));
        assert!(ConsistencyFile::parse(b"attest.dev/consistency-proof@v1\nold 03\nnew 7\n").is_err());
        assert!(ConsistencyFile::parse(b"attest.dev/consistency-proof@v1\nold 3\nnew 7\nnot-base64\n").is_err());
        assert!(ConsistencyFile::parse(&vec![b'a'; MAX_BYTES + 1]).is_err());
    }
}
