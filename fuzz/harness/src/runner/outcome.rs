//! What a run produces: each implementation's verdict on a step, the divergence, the run's
//! counters and per-step traces.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::implementations::found_text;
use crate::implementations::{Found, SpaceSnapshot};
pub use crate::ops::OpKind;
use crate::ops::{errno_name, Op, KVM_ADDRESS_SPACE_NUM};

/// How thoroughly to check.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Automatic lookups and id queries after each operation.
    pub probes: bool,
    /// Compare both address spaces in full and run the expensive invariants every this many
    /// steps (and always after the last one).
    pub full_check_every: usize,
    /// Keep every implementation's state after every step (for `replay --json`).
    pub record: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            probes: true,
            full_check_every: 64,
            record: false,
        }
    }
}

/// What one implementation answered to one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// A memory region request: its return code and, if the implementation can say, why.
    Rc { rc: i32, reason: Option<String> },
    /// A `lookup`.
    Lookup(Option<Found>),
    /// An `id` query.
    Id(Option<Found>),
    /// `fail-prepare`.
    Armed(i32),
}

impl Verdict {
    /// The verdict for a report line: `-EINVAL (HvaRange)`, `slot id 3 at index 1 ...`.
    pub fn text(&self) -> String {
        match self {
            Verdict::Rc {
                rc,
                reason: Some(why),
            } if *rc != 0 => format!("{} ({why})", errno_name(*rc)),
            Verdict::Rc { rc, .. } => errno_name(*rc),
            Verdict::Lookup(found) | Verdict::Id(found) => found_text(found.as_ref()),
            Verdict::Armed(0) => "prepare succeeds".to_string(),
            Verdict::Armed(e) => format!("prepare fails with {}", errno_name(*e)),
        }
    }
}

/// The first step at which the implementations disagree.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// 1-based step number.
    pub step: usize,
    pub op: Op,
    /// What differs, e.g. `array of AS 0`, `lookup gfn 0x1ff in AS 0 (probe)`.
    pub aspect: String,
    /// Per-implementation values of that aspect, one line each.
    pub details: Vec<String>,
    /// Other aspects that differ at the same step.
    pub also: Vec<String>,
    /// Each implementation's answer to the operation.
    pub verdicts: Vec<(&'static str, String)>,
    /// Address space shown in the report, and every implementation's state of it.
    pub tables: Vec<(u16, Vec<(&'static str, SpaceSnapshot)>)>,
    /// The program up to and including this step.
    pub ops: Vec<Op>,
    /// Number of operations in the whole program.
    pub total: usize,
    /// What the step was, by the oracle's verdict (for the signature, `report::signature`).
    pub op_kind: Option<OpKind>,
}

/// Counters of a run, for progress output and `# expect:` annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub steps: usize,
    /// Return codes of memory region requests, by errno.
    pub rcs: BTreeMap<i32, usize>,
    pub lookup_hits: usize,
    pub lookup_misses: usize,
    pub id_hits: usize,
    pub id_misses: usize,
    pub probes: u64,
    /// used_slots and generation of each address space at the end.
    pub end: Vec<(i64, u64)>,
    /// The largest used_slots seen.
    pub max_used: i64,
    /// Which [`OpKind`]s the run performed in which address space: bit `as * 16 + kind`.
    /// Not part of [`Stats::summary`]; it feeds `MEMSLOT_DIFF_KINDS_LOG` (`targets::fuzz`).
    pub kinds: u32,
    /// The implementations that left the lockstep, at which step and why
    /// ([`Implementation::leaves_lockstep`]).
    pub left: Vec<(&'static str, usize, &'static str)>,
}

impl Stats {
    /// [`Stats::kinds`] as (address space, kind) pairs.
    pub fn kind_list(kinds: u32) -> impl Iterator<Item = (u16, OpKind)> {
        (0..KVM_ADDRESS_SPACE_NUM)
            .flat_map(|a| OpKind::ALL.into_iter().map(move |k| (a, k)))
            .filter(move |&(a, k)| kinds & k.bit(a) != 0)
    }
}

impl Stats {
    /// One line that changes whenever the run's observable behaviour changes:
    /// `steps=12 ok=9 EINVAL=2 EEXIST=1 hits=3 misses=1 ids=2/0 as0=5@gen22 as1=0@gen1`.
    pub fn summary(&self) -> String {
        let mut out = format!("steps={}", self.steps);
        for (rc, n) in &self.rcs {
            let name = if *rc == 0 {
                "ok".to_string()
            } else {
                errno_name(*rc).trim_start_matches('-').to_string()
            };
            out.push_str(&format!(" {name}={n}"));
        }
        out.push_str(&format!(
            " hits={} misses={} ids={}/{}",
            self.lookup_hits, self.lookup_misses, self.id_hits, self.id_misses
        ));
        for (as_id, (used, generation)) in self.end.iter().enumerate() {
            out.push_str(&format!(" as{as_id}={used}@gen{generation}"));
        }
        for (name, step, _) in &self.left {
            out.push_str(&format!(" {name}-left@{step}"));
        }
        out
    }
}

/// Every implementation's answer and state after one step (`replay --json`).
#[derive(Clone, Debug, Serialize)]
pub struct StepTrace {
    pub step: usize,
    pub op: String,
    pub verdicts: BTreeMap<&'static str, Verdict>,
    /// Per implementation, the state of each address space.
    pub states: BTreeMap<&'static str, Vec<SpaceSnapshot>>,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunResult {
    pub stats: Stats,
    pub divergence: Option<Box<Divergence>>,
    pub trace: Vec<StepTrace>,
}

impl RunResult {
    pub fn agreed(&self) -> bool {
        self.divergence.is_none()
    }
}
