//! The options of `memslot-diff mutants`: the command line, and what the run uses.

use std::path::PathBuf;
use std::time::Duration;

use super::Engine;

/// Options of the command.
pub(super) struct Options {
    pub(super) engine: Engine,
    pub(super) time: Duration,
    pub(super) jobs: usize,
    pub(super) seed: u64,
    pub(super) sample: Option<usize>,
    pub(super) only: Vec<String>,
    pub(super) keys: Option<PathBuf>,
    pub(super) out: PathBuf,
    pub(super) list: bool,
    pub(super) bin: Option<PathBuf>,
    /// Run the listed equivalent mutants too: a claim of equivalence the harness refutes fails.
    pub(super) check_equivalent: bool,
    /// Why the core's mutants are not in this run (cargo-mutants is missing).
    pub(super) core_missing: Option<String>,
}

/// The mutation score: mutate the four C ports of the standard set (relational, logical,
/// arithmetic, off-by-one, increment, negate, drop), build them all into one memslot-diff
/// (the mutant schemata; target/mutants), run an engine on each mutant and report killed,
/// survived, timed out or crashed.
///
/// reference/c/mutants-equivalent.txt is counted apart. Writes results.json and table.md to
/// --out. Exit 1 when a mutant survived.
#[derive(clap::Args, Debug)]
pub struct MutantsArgs {
    /// stress (the generator) or libfuzzer (the shipped differential fuzz binary, built into
    /// target/mutants-fuzz)
    #[arg(long, value_name = "E", default_value = "stress", value_parser = ["stress", "libfuzzer"])]
    pub(super) engine: String,
    /// Time per mutant
    #[arg(long, value_name = "T", default_value = "60s", value_parser = crate::duration::parse_duration)]
    pub(super) time: Duration,
    /// Mutants run at once
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(super) jobs: usize,
    /// The engine's first seed
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(super) seed: u64,
    /// Run N mutants, evenly spaced
    #[arg(long, value_name = "N")]
    pub(super) sample: Option<usize>,
    /// Run only the mutants whose key contains TEXT (repeatable)
    #[arg(long, value_name = "TEXT")]
    pub(super) only: Vec<String>,
    /// Run the mutants whose keys FILE lists, one per line
    #[arg(long, value_name = "FILE")]
    pub(super) keys: Option<PathBuf>,
    /// Where results.json and table.md go
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    /// Print the mutants and run nothing
    #[arg(long)]
    pub(super) list: bool,
    /// Use this memslot-diff with the schemata built in instead of building one
    #[arg(long, value_name = "FILE")]
    pub(super) bin: Option<PathBuf>,
    /// Also run the mutants listed as equivalent, to check that none is killed
    #[arg(long)]
    pub(super) check_equivalent: bool,
}
