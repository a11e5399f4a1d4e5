//! memslot-diff: a differential fuzzing harness for KVM memslot management.
//!
//! It drives the Rust memslot core (`memslot-core`), literal C ports of kvm_main.c before and
//! after "KVM: Terminate memslot walks via used_slots" (`memslot-reference`) and an oracle
//! model in lockstep, and reports the first operation after which they disagree.
//!
//! * [`ops`]: the operations; [`scenario`]: their text form; [`decode`]: their byte form
//!   (fuzz inputs) and the encoder;
//! * [`generate`]: layout-steered generators shared by the fuzz decoding and `stress`;
//! * [`implementations`]: the trait every implementation meets, and the adapters;
//! * [`runner`]: lockstep execution and comparison; [`report`]: the divergence report;
//! * [`targets`]: the fuzz targets' entry points; [`cli`]: the `memslot-diff` command;
//!   [`stress`]: the RNG-driven stress loop; [`corpus`]: seeds and regressions on disk;
//!   [`minimize`]: shrinking a diverging program by whole operations.

pub mod arch_profile;
pub mod cli;
pub mod corpus;
pub mod decode;
pub mod eval;
pub mod generate;
pub mod implementations;
pub mod lowlevel;
pub mod minimize;
pub mod mutants;
pub mod ops;
pub mod realistic;
pub mod report;
pub mod runner;
pub mod scenario;
mod sha1;
pub mod stress;
pub mod targets;
pub mod throughput;
pub mod zoo;

pub use arch_profile::ArchProfile;
pub use ops::{Op, Region};
pub use runner::{run, Divergence, RunOptions, RunResult, Runner};
pub use targets::Target;
