//! Reading a pack's zip with every size bounded before it is trusted.
//!
//! The reader never writes to disk, yet it refuses any name that would be
//! unsafe to extract (absolute, `..`, backslashes, odd characters), so a pack
//! that passes can also be unzipped safely by hand.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::result::ZipError;

use crate::layout::{
    FILES_DIR, MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_KEPT_BYTES, MAX_NAME_BYTES, MAX_TOTAL_BYTES, SUMMARY,
};

/// One file of the pack: its hash and size, and its bytes unless it is an
/// evidence file or the summary, which are only hashed.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    pub sha256: String,
    pub size: u64,
    pub bytes: Option<Vec<u8>>,
}

/// The files of a pack by name.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    pub entries: BTreeMap<String, ArchiveEntry>,
}

impl Archive {
    /// The bytes of a kept file.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.entries.get(name).and_then(|e| e.bytes.as_deref())
    }
}

/// Why a zip is not readable as a pack at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a readable zip archive: {0}")]
    Zip(#[from] ZipError),
    #[error("the archive holds {count} files, more than the {max} a pack may hold")]
    TooManyEntries { count: usize, max: usize },
    #[error("the archive holds two files with the same name")]
    DuplicateNames,
    #[error("the file name {name:?} is not allowed in a pack: {why}")]
    BadName { name: String, why: &'static str },
    #[error("{name} uses compression method {method}; a pack uses deflate or none")]
    Method { name: String, method: String },
    #[error("{name} is larger than {max} bytes once decompressed")]
    EntryTooLarge { name: String, max: u64 },
    #[error("the files add up to more than {max} bytes once decompressed")]
    TotalTooLarge { max: u64 },
    #[error("reading {name} from the archive failed: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads every file of the archive, hashing each.
pub fn read_archive<R: Read + Seek>(reader: R) -> Result<Archive, ReadError> {
    let mut zip = zip::ZipArchive::new(reader)?;
    if zip.len() > MAX_ENTRIES {
        return Err(ReadError::TooManyEntries { count: zip.len(), max: MAX_ENTRIES });
    }
    if zip.has_duplicate_names() {
        return Err(ReadError::DuplicateNames);
    }
    let mut archive = Archive::default();
    let mut total = 0u64;
    let mut kept_total = 0u64;
    for index in 0..zip.len() {
        let mut file = zip.by_index(index)?;
        let name = check_name(file.name_raw())?;
        if file.is_dir() || file.is_symlink() {
            return Err(ReadError::BadName { name, why: "directories and links are not allowed" });
        }
        let method = file.compression();
        if method != CompressionMethod::Deflated && method != CompressionMethod::Stored {
            return Err(ReadError::Method { name, method: method.to_string() });
        }
        if file.size() > MAX_ENTRY_BYTES {
            return Err(ReadError::EntryTooLarge { name, max: MAX_ENTRY_BYTES });
        }
        let keep = !(name.starts_with(FILES_DIR) || name == SUMMARY);
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        // The declared size may lie: count what actually comes out.
        let mut limited = (&mut file).take(MAX_ENTRY_BYTES + 1);
        loop {
            let n = limited.read(&mut buffer).map_err(|source| ReadError::Io { name: name.clone(), source })?;
            if n == 0 {
                break;
            }
            let chunk = buffer.get(..n).unwrap_or_default();
            size += n as u64;
            total += n as u64;
            if size > MAX_ENTRY_BYTES {
                return Err(ReadError::EntryTooLarge { name, max: MAX_ENTRY_BYTES });
            }
            if total > MAX_TOTAL_BYTES {
                return Err(ReadError::TotalTooLarge { max: MAX_TOTAL_BYTES });
            }
            hasher.update(chunk);
            if keep {
                kept_total += n as u64;
                if kept_total > MAX_KEPT_BYTES {
                    return Err(ReadError::TotalTooLarge { max: MAX_KEPT_BYTES });
                }
                kept.extend_from_slice(chunk);
            }
        }
        let entry = ArchiveEntry { sha256: hex::encode(hasher.finalize()), size, bytes: keep.then_some(kept) };
        archive.entries.insert(name, entry);
    }
    Ok(archive)
}

/// Accepts relative names of `[A-Za-z0-9._-]` components joined by `/`.
fn check_name(raw: &[u8]) -> Result<String, ReadError> {
    let shown = String::from_utf8_lossy(raw).chars().take(MAX_NAME_BYTES).collect::<String>();
    let bad = |why| Err(ReadError::BadName { name: shown.clone(), why });
    if raw.is_empty() || raw.len() > MAX_NAME_BYTES {
        return bad("a name must be 1 to 200 bytes");
    }
    if raw.starts_with(b"/") {
        return bad("absolute names are not allowed");
    }
    if !raw.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/')) {
        return bad("only letters, digits, '.', '_', '-' and '/' are allowed");
    }
    for component in raw.split(|b| *b == b'/') {
        if component.is_empty() || component == b"." || component == b".." {
            return bad("empty, '.' and '..' path components are not allowed");
        }
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in files {
            writer.start_file(*name, SimpleFileOptions::default()).expect("start");
            writer.write_all(content).expect("write");
        }
        writer.finish().expect("finish").into_inner()
    }

    #[test]
    fn reads_and_hashes() {
        let archive = read_archive(Cursor::new(zip_of(&[("a.txt", b"x"), ("files/ab", b"y")]))).expect("reads");
        let a = &archive.entries["a.txt"];
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"x")));
        assert_eq!(a.bytes.as_deref(), Some(&b"x"[..]));
        assert!(archive.entries["files/ab"].bytes.is_none());
    }

    #[test]
    fn refuses_unsafe_names() {
        for name in ["../evil", "/etc/passwd", "a/../../b", "a\\b", "a//b", "./a", "a/"] {
            let bytes = zip_of(&[(name, b"x")]);
            assert!(read_archive(Cursor::new(bytes)).is_err(), "{name} must be refused");
        }
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(read_archive(Cursor::new(b"not a zip".to_vec())), Err(ReadError::Zip(_))));
    }
}
