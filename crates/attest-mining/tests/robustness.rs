//! Arbitrary and truncated input must yield errors, never panics.

use std::path::Path;
use std::sync::OnceLock;

use attest_mining::{CsvOptions, ReadLimits, read_csv, read_pnml, read_xes};
use proptest::prelude::*;

fn running_example() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/logs/running-example.xes");
        std::fs::read(path).expect("shared running example")
    })
}

fn gzipped_example() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(running_example()).expect("in memory");
        encoder.finish().expect("in memory")
    })
}

fn small_limits() -> ReadLimits {
    ReadLimits {
        max_value_bytes: 4096,
        max_events: 1000,
        max_traces: 100,
        max_attributes_per_element: 50,
        max_depth: 16,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn xes_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_xes(bytes.as_slice(), &small_limits());
    }

    #[test]
    fn xes_reader_survives_mutated_documents(
        position in 0usize..15_000,
        replacement in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut bytes = running_example().to_vec();
        let start = position.min(bytes.len());
        let end = (start + replacement.len()).min(bytes.len());
        bytes.splice(start..end, replacement);
        let _ = read_xes(bytes.as_slice(), &small_limits());
    }

    #[test]
    fn truncated_xes_is_an_error(cut in 0usize..15_800) {
        let bytes = running_example();
        let end_of_log = bytes.len() - 8;
        let cut = cut.min(end_of_log);
        prop_assert!(read_xes(&bytes[..cut], &ReadLimits::default()).is_err());
    }

    #[test]
    fn truncated_gzip_is_an_error(cut in 0usize..4000) {
        let bytes = gzipped_example();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(read_xes(&bytes[..cut], &ReadLimits::default()).is_err());
    }

    #[test]
    fn csv_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let options = CsvOptions { limits: small_limits(), ..CsvOptions::default() };
        let _ = read_csv(bytes.as_slice(), &options);
    }

    #[test]
    fn csv_reader_survives_random_rows(text in "(case:concept:name,concept:name,time:timestamp\n)?([0-9a-z,: -]{0,40}\n){0,20}") {
        let options = CsvOptions { limits: small_limits(), ..CsvOptions::default() };
        let _ = read_csv(text.as_bytes(), &options);
    }

    #[test]
    fn pnml_reader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_pnml(bytes.as_slice());
    }
}
