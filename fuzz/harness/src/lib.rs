//! memslot-harness: the differential harness for KVM memslot management, as a library.
//!
//! It drives the Rust memslot core (`memslot-core`), literal C ports of kvm_main.c before and
//! after "KVM: Terminate memslot walks via used_slots" and of today's tree-based code
//! (`memslot-reference`) and an oracle model in lockstep, and reports the first operation
//! after which they disagree. The `memslot-diff` command (`fuzz/tool`) and the cargo-fuzz
//! targets (`fuzz/fuzz_targets`) are thin users of it.
//!
//! * inputs: [`ops`] the operations; [`scenario`] their text form; [`decode`] their byte form
//!   (fuzz inputs) and the encoder; [`generate`] and [`realistic`] the layout-steered
//!   generators shared by the fuzz decoding and [`stress`]; [`lowlevel`] the `update` target's
//!   direct calls into the C ports; [`corpus`] seeds and regressions on disk;
//! * engines: [`implementations`] the trait every implementation meets, and the adapters;
//!   [`arch_profile`] the slot limits they are built for; [`zoo`] the known-buggy variants;
//! * the lockstep: [`runner`] execution and comparison; [`report`] the divergence report;
//!   [`minimize`] shrinking a diverging program by whole operations;
//! * fuzzing: [`target`] the targets by name and their decoding; [`targets`] their entry
//!   points; [`profile`] where their time goes.

pub mod arch_profile;
pub mod corpus;
pub mod decode;
pub mod generate;
pub mod implementations;
pub mod lowlevel;
pub mod minimize;
pub mod ops;
pub mod profile;
pub mod realistic;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stress;
pub mod target;
pub mod targets;
pub mod zoo;

pub use arch_profile::ArchProfile;
pub use ops::{Op, Region};
pub use runner::{Divergence, RunOptions, RunResult, Runner};
pub use target::Target;
pub use zoo::run;
