//! The bug zoo: real bugs of the seed's patch series, each compiled alone into a state of a C
//! port (`memslot_reference::Port`), and which implementations a run compares.
//!
//! By default a run compares the [standard set](crate::runner::standard_implementations):
//! core, the three ports (with the later fixes of their known bugs), tree and the oracle. With a
//! zoo bug selected (`--zoo BUG` on the command line, `MEMSLOT_DIFF_ZOO=BUG` for the fuzz
//! targets) it compares core, tree and oracle with that bug's state, or with its fixed state
//! (`BUG:fixed`, `--fixed`), and nothing else: so a report names the bug state, and a fixed
//! state that is reported is a harness bug.
//!
//! The generator can be switched too (`--generator random`, `MEMSLOT_DIFF_GENERATOR=random`):
//! the baseline of `memslot-diff eval` draws only requests with fields from validation edge
//! values, raw lookups and id queries, none of the layout-steered intents.

use std::sync::OnceLock;

use memslot_reference::Port;

use crate::arch_profile::ArchProfile;
use crate::generate::Weights;
use crate::implementations::core::CoreImpl;
use crate::implementations::oracle::Oracle;
use crate::implementations::port::PortImpl;
use crate::implementations::tree::TreeImpl;
use crate::implementations::Implementation;
use crate::ops::Op;
use crate::runner::{implementations_at, RunOptions, RunResult, Runner};

/// One bug of the zoo.
#[derive(Debug)]
pub struct ZooBug {
    /// `stale-lru`, ...
    pub name: &'static str,
    /// The state with this bug alone.
    pub state: Port,
    /// The same port with the fix: must never be reported.
    pub fixed: Port,
    /// The upstream fix.
    pub fix: &'static str,
    /// The fuzz target that reaches it: `differential`, `lookups`, `requests` (whose decoding
    /// arms `fail-prepare` for this bug) or `update` (update_memslots driven directly).
    pub target: &'static str,
    /// What goes wrong, one line.
    pub what: &'static str,
}

impl ZooBug {
    /// Whether programs for this bug may arm `fail-prepare` (the decoding's switch).
    pub fn needs_fail_prepare(&self) -> bool {
        self.fixed == Port::PreFixed && self.state == Port::PreBugPrepareInvalid
    }
}

/// Every zoo bug (kvm-memslot-facts.md §2.7 and §3).
pub const BUGS: [ZooBug; 6] = [
    ZooBug {
        name: "stale-lru",
        state: Port::Post15BugStaleLru,
        fixed: Port::Post15,
        fix: "0774a964ef56 KVM: Fix out of range accesses to memslots (LRU reset)",
        target: "differential",
        what: "after a delete, the LRU hint can index past the next exactly sized copy; the next lookup reads there",
    },
    ZooBug {
        name: "empty-array",
        state: Port::Post15BugEmptyArray,
        fixed: Port::Post15,
        fix: "0774a964ef56 KVM: Fix out of range accesses to memslots (used_slots == 0)",
        target: "differential",
        what: "a lookup in an address space that never had a slot reads memslots[0] of an empty array",
    },
    ZooBug {
        name: "below-lowest",
        state: Port::Post15BugBelowLowest,
        fixed: Port::Post15,
        fix: "b6467ab142b7 KVM: Check validity of resolved slot when searching memslots",
        target: "lookups",
        what: "a lookup below the lowest slot reads memslots[used_slots], one past the exactly sized array",
    },
    ZooBug {
        name: "below-lowest-full",
        state: Port::PreBugBelowLowestFull,
        fixed: Port::PreFixed,
        fix: "b6467ab142b7 KVM: Check validity of resolved slot when searching memslots (5.6 stable)",
        target: "lookups",
        what: "with all 512 slots used, a lookup below the lowest slot reads memslots[512], past the fixed array",
    },
    ZooBug {
        name: "prepare-invalid",
        state: Port::PreBugPrepareInvalid,
        fixed: Port::PreFixed,
        fix: "KVM: Reinstall old memslots if arch preparation fails (v6 02/22)",
        target: "requests",
        what: "a DELETE or MOVE whose arch preparation fails leaves the INVALID copy installed",
    },
    ZooBug {
        name: "update-absent-id",
        state: Port::Post15BugUpdateAbsentId,
        fixed: Port::Post15,
        fix: "1e8617d37fc3 KVM: Move WARN on invalid memslot index to update_memslots()",
        target: "update",
        what: "update_memslots() of a MOVE or FLAGS_ONLY for an absent id writes memslots[-1]",
    },
];

pub fn bug(name: &str) -> Option<&'static ZooBug> {
    BUGS.iter().find(|b| b.name == name)
}

/// The names of every bug, for messages.
pub fn bug_names() -> String {
    BUGS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

/// Which implementations a run compares.
#[derive(Clone, Copy, Debug)]
pub enum Lockstep {
    /// core, pre-fixed, post-fixed, post15, modern, tree, oracle.
    Standard,
    /// core, tree, oracle and one zoo bug's state (`fixed`: its fixed state).
    Zoo { bug: &'static ZooBug, fixed: bool },
    /// The standard set and the user's own variant of a port (`variant`, built with
    /// `MEMSLOT_VARIANT=STATE:DIR`), next to the state it was built as (at x86-32k, with that
    /// profile's set, when the variant is of `modern_32k`).
    WithVariant,
    /// Today's x86 limits (`--arch x86-32k`): core, modern-32k, tree and oracle at 32,764
    /// user slots (`runner::x86_32k_implementations`; the 2020 ports cannot run there).
    X86_32k,
}

impl Lockstep {
    /// `stale-lru` or `stale-lru:fixed`.
    pub fn parse(text: &str) -> Result<Lockstep, String> {
        let (name, fixed) = match text.strip_suffix(":fixed") {
            Some(name) => (name, true),
            None => (text, false),
        };
        let bug = bug(name)
            .ok_or_else(|| format!("unknown zoo bug `{name}` (known: {})", bug_names()))?;
        Ok(Lockstep::Zoo { bug, fixed })
    }

    /// The C port state this lockstep drives besides core, tree and oracle (zoo only).
    pub fn port(&self) -> Option<Port> {
        match *self {
            Lockstep::Standard | Lockstep::WithVariant | Lockstep::X86_32k => None,
            Lockstep::Zoo { bug, fixed } => Some(if fixed { bug.fixed } else { bug.state }),
        }
    }

    /// The arch profile the lockstep runs at.
    pub fn arch(&self) -> ArchProfile {
        match self {
            Lockstep::X86_32k => ArchProfile::X86_32k,
            Lockstep::WithVariant if Port::variant().is_some_and(|(p, _)| p == Port::Modern32k) => {
                ArchProfile::X86_32k
            }
            _ => ArchProfile::X86_512,
        }
    }

    /// The standard lockstep at `arch`.
    pub fn at(arch: ArchProfile) -> Lockstep {
        match arch {
            ArchProfile::X86_512 => Lockstep::Standard,
            ArchProfile::X86_32k => Lockstep::X86_32k,
        }
    }

    pub fn implementations(&self) -> Vec<Box<dyn Implementation>> {
        match *self {
            Lockstep::Standard | Lockstep::X86_32k => implementations_at(self.arch()),
            Lockstep::WithVariant => with_variant(implementations_at(self.arch())),
            Lockstep::Zoo { bug, fixed } => vec![
                Box::new(CoreImpl::new()),
                Box::new(PortImpl::new(if fixed { bug.fixed } else { bug.state })),
                Box::new(TreeImpl::new()),
                Box::new(Oracle::new()),
            ],
        }
    }

    /// What a replay command needs to compare the same implementations: ` --zoo BUG [--fixed]`.
    pub fn replay_args(&self) -> String {
        match self {
            Lockstep::Standard => String::new(),
            Lockstep::WithVariant => " --variant".to_string(),
            Lockstep::X86_32k => " --arch x86-32k".to_string(),
            Lockstep::Zoo { bug, fixed: false } => format!(" --zoo {}", bug.name),
            Lockstep::Zoo { bug, fixed: true } => format!(" --zoo {} --fixed", bug.name),
        }
    }

    /// Whether the decoding may arm `fail-prepare`. The standard set may: its array ports are
    /// the fixed states, which reinstall the old memslots when arch preparation fails, so the
    /// error path of every request is compared too. A zoo lockstep may only for the bug that
    /// needs it, so that each bug's programs (and its eval figures) stay about that bug.
    pub fn allows_fail_prepare(&self) -> bool {
        match self {
            Lockstep::Standard | Lockstep::WithVariant | Lockstep::X86_32k => true,
            Lockstep::Zoo { bug, .. } => bug.needs_fail_prepare(),
        }
    }
}

impl Lockstep {
    /// `MEMSLOT_DIFF_ZOO` (`BUG` or `BUG:fixed`), else `MEMSLOT_DIFF_VARIANT=1` (the standard
    /// set and the user's variant), else `MEMSLOT_DIFF_ARCH` (`x86-32k`), else the standard
    /// set.
    pub fn from_env() -> Result<Lockstep, String> {
        let variant =
            std::env::var("MEMSLOT_DIFF_VARIANT").is_ok_and(|v| !v.is_empty() && v != "0");
        let arch = ArchProfile::from_env()?;
        let zoo = std::env::var("MEMSLOT_DIFF_ZOO").is_ok_and(|v| !v.is_empty());
        if arch != ArchProfile::default() && (zoo || variant) {
            return Err(format!(
                "MEMSLOT_DIFF_ARCH={}: the zoo and variant locksteps choose their own profile; \
                 unset one",
                arch.name()
            ));
        }
        if arch != ArchProfile::default() {
            return Ok(Lockstep::at(arch));
        }
        match std::env::var("MEMSLOT_DIFF_ZOO") {
            Ok(_) if variant => {
                Err("MEMSLOT_DIFF_ZOO and MEMSLOT_DIFF_VARIANT: choose one lockstep".to_string())
            }
            Ok(text) if !text.is_empty() => {
                Lockstep::parse(&text).map_err(|e| format!("MEMSLOT_DIFF_ZOO: {e}"))
            }
            _ if variant => {
                Lockstep::with_variant().map_err(|e| format!("MEMSLOT_DIFF_VARIANT: {e}"))
            }
            _ => Ok(Lockstep::Standard),
        }
    }

    /// [`Lockstep::WithVariant`], if this build has a variant.
    pub fn with_variant() -> Result<Lockstep, String> {
        match Port::variant() {
            Some(_) => Ok(Lockstep::WithVariant),
            None => Err(
                "this build has no variant: build it with MEMSLOT_VARIANT=STATE:DIR \
                         (ci/fuzz --variant STATE:DIR does), see the README"
                    .to_string(),
            ),
        }
    }
}

/// The lockstep of this process (the fuzz targets'): `MEMSLOT_DIFF_ZOO`, read once, else the
/// standard set. An unknown bug name stops the process with the list of known ones (a fuzzer
/// must not silently fuzz something else). The command line passes its `--zoo` explicitly.
pub fn selected() -> Lockstep {
    static LOCKSTEP: OnceLock<Lockstep> = OnceLock::new();
    *LOCKSTEP.get_or_init(|| Lockstep::from_env().unwrap_or_else(|e| panic!("{e}")))
}

/// Which generator weights programs are drawn with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    /// Each target's layout-steered intents (the default).
    Steered,
    /// The baseline: requests with fields from validation edge values, raw lookups, id
    /// queries; no intent that looks at the layout.
    Random,
}

impl Generator {
    pub fn parse(text: &str) -> Result<Generator, String> {
        match text {
            "steered" => Ok(Generator::Steered),
            "random" => Ok(Generator::Random),
            _ => Err(format!(
                "unknown generator `{text}` (known: steered, random)"
            )),
        }
    }

    /// `MEMSLOT_DIFF_GENERATOR`, else [`Generator::Steered`].
    pub fn from_env() -> Result<Generator, String> {
        match std::env::var("MEMSLOT_DIFF_GENERATOR") {
            Ok(text) if !text.is_empty() => {
                Generator::parse(&text).map_err(|e| format!("MEMSLOT_DIFF_GENERATOR: {e}"))
            }
            _ => Ok(Generator::Steered),
        }
    }

    /// The baseline's weights.
    pub fn random_weights() -> Weights {
        use crate::generate::Intent::*;
        Weights(vec![(RawInteresting, 60), (LookupRaw, 30), (IdQuery, 10)])
    }
}

/// The generator of this process (the fuzz targets'): `MEMSLOT_DIFF_GENERATOR`, read once,
/// else [`Generator::Steered`].
pub fn generator() -> Generator {
    static GENERATOR: OnceLock<Generator> = OnceLock::new();
    *GENERATOR.get_or_init(|| Generator::from_env().unwrap_or_else(|e| panic!("{e}")))
}

/// `impls` with the user's variant inserted after the state it was built as (or, for a state
/// outside the set, before `tree`): reports name it `variant`.
fn with_variant(mut impls: Vec<Box<dyn Implementation>>) -> Vec<Box<dyn Implementation>> {
    let Some((base, _)) = Port::variant() else {
        return impls;
    };
    let at = impls
        .iter()
        .position(|imp| imp.name() == base.name())
        .map(|i| i + 1)
        .or_else(|| impls.iter().position(|imp| imp.name() == "tree"))
        .unwrap_or(impls.len() - 1);
    impls.insert(at, Box::new(PortImpl::new(Port::Variant)));
    impls
}

/// Run `ops` on this process's implementations (the standard set, or a zoo bug's state with
/// core and oracle: [`selected`]) with default options.
pub fn run(ops: &[Op]) -> RunResult {
    Runner::new(selected().implementations(), RunOptions::default()).run(ops)
}
