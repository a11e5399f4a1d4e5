//! The `memslot-diff` command over the harness library (`memslot_harness`): each command in
//! [`cli`], the evaluation statistics and charts in [`eval`], the harness's own speed in
//! [`throughput`], the mutation score in [`mutants`]. `main.rs` only calls [`cli::run`].

pub mod cli;
pub mod duration;
pub mod eval;
pub mod mutants;
pub mod throughput;
