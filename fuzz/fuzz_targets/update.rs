//! Fuzz target `update`: see `memslot_harness::lowlevel`. Drives update_memslots() directly on the
//! core and the post15 port, including calls the ioctl cannot make, and panics with the report
//! if they disagree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memslot_harness::lowlevel::fuzz(data));
