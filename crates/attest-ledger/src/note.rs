//! C2SP signed-note (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is a text ending in a newline, a blank line, and signature lines
//! `— <key name> base64(key ID || signature)`. The key ID is the first four
//! bytes of `SHA-256(key name || 0x0A || 0x01 || public key)`.
//!
//! Keys have the text forms of Go's `golang.org/x/mod/sumdb/note`:
//! verifier keys are `name+hex(key ID)+base64(0x01 || public key)`, signer
//! keys `PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Largest note accepted, in bytes: room for 16 post-quantum signatures.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Most signature lines accepted; the spec requires accepting at least 16.
pub const MAX_SIGNATURES: usize = 16;

/// Longest key name accepted, in bytes.
pub const MAX_KEY_NAME_BYTES: usize = 256;

/// Signature type byte of Ed25519 note signatures.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

const SIGNATURE_PREFIX: &str = "\u{2014} ";
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";
/// Longest key text: the name, `+`, eight hex digits, `+`, base64 of 33 bytes.
const MAX_KEY_TEXT_BYTES: usize = SIGNER_KEY_PREFIX.len() + MAX_KEY_NAME_BYTES + 1 + 8 + 1 + 44;

/// Why a note or key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note exceeds [`MAX_NOTE_BYTES`].
    #[error("note is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    /// The note is not UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// The note holds an ASCII control character other than newline.
    #[error("note holds control character U+{code:04X} at byte {offset}; only newline is allowed")]
    ControlCharacter { code: u32, offset: usize },
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line followed by signature lines")]
    MissingSignatures,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has more than {max} signature lines")]
    TooManySignatures { max: usize },
    /// A signature line is not `— <name> <base64>`.
    #[error("signature line {line} is malformed: {reason}")]
    MalformedSignature { line: usize, reason: &'static str },
    /// A signature by the trusted key does not verify.
    #[error("signature by {name}+{key_id:08x} does not verify: the note was altered or forged")]
    BadSignature { name: String, key_id: u32 },
    /// The note carries no signature by the trusted key.
    #[error("note has no signature by {name}+{key_id:08x}")]
    NotSignedByKey { name: String, key_id: u32 },
    /// A text to sign does not end in a newline, or is not a valid note text.
    #[error("note text must be non-empty, end with a newline and hold no control characters")]
    InvalidText,
    /// A key name breaks the signed-note rules.
    #[error("key name {name:?} is invalid: it must be 1 to {max} bytes with no spaces and no '+'")]
    InvalidKeyName { name: String, max: usize },
    /// A key's text form is malformed.
    #[error("key text is malformed: {reason}")]
    MalformedKey { reason: &'static str },
    /// A key of another signature type than Ed25519.
    #[error("key has signature type {found:#04x}; only Ed25519 (0x01) is supported")]
    UnsupportedKeyType { found: u8 },
    /// The key ID in a key's text does not match its name and public key.
    #[error("key ID {found:08x} does not match the name and key, which give {expected:08x}")]
    KeyIdMismatch { found: u32, expected: u32 },
}

/// An Ed25519 note signing key with its name.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_id: u32,
    key: SigningKey,
}

/// An Ed25519 note verifier key with its name.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl SignerKey {
    /// A new random key from the operating system's generator.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::from_bytes(name, &SigningKey::generate(&mut rand::rngs::OsRng).to_bytes())
    }

    /// The key with the given 32-byte Ed25519 seed (secret).
    pub fn from_bytes(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        Ok(Self { name: name.to_owned(), key_id: key_id(name, key.verifying_key().as_bytes()), key })
    }

    /// The 32-byte Ed25519 seed. Secret: store it like a password.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Parses the secret text form `PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)`.
    pub fn from_text(text: &str) -> Result<Self, NoteError> {
        if text.len() > MAX_KEY_TEXT_BYTES {
            return Err(NoteError::MalformedKey { reason: "too long" });
        }
        let rest = text
            .strip_prefix(SIGNER_KEY_PREFIX)
            .ok_or(NoteError::MalformedKey { reason: "signer key must start with PRIVATE+KEY+" })?;
        let (name, found_id, seed) = split_key_text(rest)?;
        let seed: [u8; 32] =
            seed.try_into().map_err(|_| NoteError::MalformedKey { reason: "Ed25519 seed must be 32 bytes" })?;
        let key = Self::from_bytes(name, &seed)?;
        if key.key_id != found_id {
            return Err(NoteError::KeyIdMismatch { found: found_id, expected: key.key_id });
        }
        Ok(key)
    }

    /// The secret text form `PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)`.
    pub fn to_text(&self) -> String {
        let mut material = vec![ED25519_SIGNATURE_TYPE];
        material.extend_from_slice(&self.key.to_bytes());
        format!("{SIGNER_KEY_PREFIX}{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(material))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID: first four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }

    /// The signature line for `text`, including its final newline.
    fn signature_line(&self, text: &str) -> String {
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

impl fmt::Debug for SignerKey {
    // The seed never appears in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl VerifierKey {
    /// The verifier key for a 32-byte Ed25519 public key.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::MalformedKey { reason: "not an Ed25519 public key" })?;
        if key.is_weak() {
            return Err(NoteError::MalformedKey { reason: "Ed25519 public key has small order" });
        }
        Ok(Self { name: name.to_owned(), key_id: key_id(name, public_key), key })
    }

    /// Parses the text form `name+hex(key ID)+base64(0x01 || public key)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if text.len() > MAX_KEY_TEXT_BYTES {
            return Err(NoteError::MalformedKey { reason: "too long" });
        }
        let (name, found_id, public_key) = split_key_text(text)?;
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| NoteError::MalformedKey { reason: "Ed25519 public key must be 32 bytes" })?;
        let key = Self::from_public_key(name, &public_key)?;
        if key.key_id != found_id {
            return Err(NoteError::KeyIdMismatch { found: found_id, expected: key.key_id });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID: first four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Display for VerifierKey {
    /// The text form `name+hex(key ID)+base64(0x01 || public key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = vec![ED25519_SIGNATURE_TYPE];
        material.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(material))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Signs `text` with each signer and returns the note.
///
/// `text` must be non-empty, end with a newline and hold no control
/// characters other than newline.
pub fn sign(text: &str, signers: &[&SignerKey]) -> Result<String, NoteError> {
    if !text.ends_with('\n') || text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::InvalidText);
    }
    let mut note = format!("{text}\n");
    for signer in signers {
        note.push_str(&signer.signature_line(text));
    }
    Ok(note)
}

/// Checks `note` against the trusted `verifier` and returns its text.
///
/// Signature lines by other keys are ignored, as the spec requires; every
/// line whose name and key ID match `verifier` must verify, and at least one
/// must be present.
pub fn open(note: impl AsRef<[u8]>, verifier: &VerifierKey) -> Result<String, NoteError> {
    let (text, signatures) = split_note(note.as_ref())?;
    let mut verified = false;
    for signature in signatures {
        if signature.name != verifier.name || signature.key_id != verifier.key_id {
            continue;
        }
        let valid = Signature::from_slice(&signature.signature)
            .is_ok_and(|sig| verifier.key.verify_strict(text.as_bytes(), &sig).is_ok());
        if !valid {
            return Err(NoteError::BadSignature { name: verifier.name.clone(), key_id: verifier.key_id });
        }
        verified = true;
    }
    if verified {
        Ok(text.to_owned())
    } else {
        Err(NoteError::NotSignedByKey { name: verifier.name.clone(), key_id: verifier.key_id })
    }
}

/// One parsed, not yet verified, signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name on the line.
    pub name: String,
    /// The key ID, the first four bytes of the decoded blob.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// Splits a note into its text and signature lines without verifying
/// anything: the text must not be trusted until [`open`] succeeds.
pub fn split_note(note: &[u8]) -> Result<(&str, Vec<NoteSignature>), NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge { len: note.len(), max: MAX_NOTE_BYTES });
    }
    let note = std::str::from_utf8(note).map_err(|_| NoteError::NotUtf8)?;
    if let Some((offset, c)) = note.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        return Err(NoteError::ControlCharacter { code: u32::from(c), offset });
    }
    // The text ends at the last blank line; it keeps its final newline.
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, signature_block) = (&note[..=split], &note[split + 2..]);
    if signature_block.is_empty() || !signature_block.ends_with('\n') {
        return Err(NoteError::MissingSignatures);
    }
    let lines = &signature_block[..signature_block.len() - 1];
    if lines.split('\n').count() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
    }
    let signatures = lines
        .split('\n')
        .enumerate()
        .map(|(number, line)| parse_signature_line(number + 1, line))
        .collect::<Result<_, _>>()?;
    Ok((text, signatures))
}

fn parse_signature_line(line: usize, text: &str) -> Result<NoteSignature, NoteError> {
    let malformed = |reason| NoteError::MalformedSignature { line, reason };
    let rest = text.strip_prefix(SIGNATURE_PREFIX).ok_or(malformed("it must start with an em dash and a space"))?;
    let (name, encoded) =
        rest.split_once(' ').ok_or(malformed("it must hold a key name, a space and a base64 signature"))?;
    if !is_valid_key_name(name) {
        return Err(malformed("the key name is empty, too long, or holds a space or '+'"));
    }
    let blob = STANDARD.decode(encoded).map_err(|_| malformed("the signature is not standard base64"))?;
    let (id, signature) = blob
        .split_first_chunk::<4>()
        .filter(|(_, signature)| !signature.is_empty())
        .ok_or(malformed("the signature must hold a 4-byte key ID and at least one byte"))?;
    Ok(NoteSignature { name: name.to_owned(), key_id: u32::from_be_bytes(*id), signature: signature.to_vec() })
}

/// Key ID per signed-note: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`.
fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_SIGNATURE_TYPE]);
    hasher.update(public_key);
    let digest: [u8; 32] = hasher.finalize().into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEY_NAME_BYTES
        && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName {
            name: name.chars().take(MAX_KEY_NAME_BYTES).collect(),
            max: MAX_KEY_NAME_BYTES,
        })
    }
}

/// Splits `name+hex(key ID)+base64(0x01 || key)` and returns the key bytes
/// after the type byte. The base64 part may itself hold '+'.
fn split_key_text(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let malformed = |reason| NoteError::MalformedKey { reason };
    let (name, rest) = text.split_once('+').ok_or(malformed("expected name+keyid+key"))?;
    let (id_hex, encoded) = rest.split_once('+').ok_or(malformed("expected name+keyid+key"))?;
    check_key_name(name)?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("key ID must be 8 hex digits"));
    }
    let key_id = u32::from_str_radix(id_hex, 16).map_err(|_| malformed("key ID must be 8 hex digits"))?;
    let material = STANDARD.decode(encoded).map_err(|_| malformed("key material is not standard base64"))?;
    match material.split_first() {
        Some((&ED25519_SIGNATURE_TYPE, key)) => Ok((name, key_id, key.to_vec())),
        Some((&found, _)) => Err(NoteError::UnsupportedKeyType { found }),
        None => Err(malformed("key material is empty")),
    }
}
