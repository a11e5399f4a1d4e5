//! The `memslot-diff` command over the harness library (`memslot_harness`): each command in
//! [`cli`], the evaluation of zoo bug detection in [`eval`] (its survival charts in [`chart`]), the harness's own speed in
//! [`throughput`], the mutation score in [`mutants`], the unattended fuzzing job in
//! [`nightly`]. What several commands share: the cargo-fuzz builds ([`fuzz_build`]), child
//! processes that die with the tool ([`supervise`]), progress on standard error
//! ([`progress`]). `main.rs` only calls [`cli::run`].

pub mod chart;
pub mod cli;
pub mod duration;
pub mod eval;
pub mod fuzz_build;
pub mod mutants;
pub mod nightly;
pub mod progress;
pub mod supervise;
pub mod throughput;
