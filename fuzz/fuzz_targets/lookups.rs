//! Fuzz target `lookups`: see `memslot_harness::targets`. Decodes the input, runs every
//! implementation in lockstep, panics with the divergence report if they disagree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memslot_harness::targets::lookups(data));
