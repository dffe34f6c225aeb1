//! Arbitrary bytes (plain or gzip) into the XES reader: it must return a log or
//! an error, never panic; a log it returns must survive a write/read round trip.

#![no_main]

use attest_mining::{ReadLimits, XesWriteError, read_xes, summarize, write_xes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReadLimits {
        max_value_bytes: 64 * 1024,
        max_events: 10_000,
        max_traces: 1_000,
        max_attributes_per_element: 100,
        max_depth: 32,
    };
    let Ok(log) = read_xes(data, &limits) else { return };
    let mut written = Vec::new();
    match write_xes(&log, &mut written) {
        Ok(()) => {}
        // Control characters that XML 1.0 cannot carry may arrive as character references.
        Err(XesWriteError::InvalidXmlChar { .. }) => return,
        Err(error) => panic!("writing to memory failed: {error}"),
    }
    let again = read_xes(written.as_slice(), &ReadLimits::default())
        .unwrap_or_else(|error| panic!("the writer's output does not read back: {error}"));
    assert_eq!(summarize(&again), summarize(&log));
    assert_eq!(again.traces.len(), log.traces.len());
});
