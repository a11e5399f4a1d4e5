//! The runner: drives every implementation in lockstep and compares them after each operation.
//!
//! After every operation it compares, across implementations: the return code (and, between
//! the core and the oracle, the validation step that refused), the arrays of the address space
//! the operation touched (first `used_slots` entries), the index of every id (absent ids
//! normalised), the walk order, the generation and used_slots of the other address space, the
//! LRU hint (among implementations that have one), WARN counts (any WARN is a finding), and each
//! implementation's own invariants. Then it probes: `search_memslots` at GFNs where bugs live
//! (each slot's first and last page, one below, one past, gap middles, 0, the top of the GFN
//! space) and `id_to_memslot` for present and absent ids, comparing results and the LRU hint
//! after every probe. The probes' LRU updates are undone afterwards, so that they do not hide
//! LRU-dependent behaviour of the program's own lookups. Every `full_check_every` steps and at
//! the end both address spaces are compared in full and the expensive invariants run (the pre
//! port's whole fixed array). The run stops at the first step where anything differs.

use std::collections::BTreeMap;

use memslot_reference::{api_slot_bytes, ApiSlot};
use serde::Serialize;

use crate::arch_profile::ArchProfile;
use crate::implementations::core::CoreImpl;
use crate::implementations::oracle::{packed_slot, Oracle};
use crate::implementations::port::PortImpl;
use crate::implementations::tree::TreeImpl;
use crate::implementations::{check_snapshot, Found, Implementation, Quick, Slot, SpaceSnapshot};
use crate::ops::{errno_name, Op, Region2, KVM_ADDRESS_SPACE_NUM, MAX_GFN};
use crate::report::found_text;

/// Above this many slots in an address space, probes cover only the region an operation touched.
pub const PROBE_ALL_LIMIT: usize = 32;

/// The implementations compared by default: core (the array backend), the three 2020 ports, the
/// tree-based port of today's kernel (`modern`), tree (the core's tree backend) and the oracle.
/// The 2020 ports carry the later upstream fixes of the bugs they are known to have
/// (pre-fixed, post-fixed, post15: see `memslot_reference::Port`),
/// so that a run is not drowned by a bug fixed in 2020; the literal states, each with its bug,
/// are in the zoo (`crate::zoo`). The core comes first (the self-test replaces it) and the
/// oracle last (it names what a request changed).
pub fn standard_implementations() -> Vec<Box<dyn Implementation>> {
    vec![
        Box::new(CoreImpl::new()),
        Box::new(PortImpl::new(memslot_reference::Port::PreFixed)),
        Box::new(PortImpl::new(memslot_reference::Port::PostFixed)),
        Box::new(PortImpl::new(memslot_reference::Port::Post15)),
        Box::new(PortImpl::new(memslot_reference::Port::Modern)),
        Box::new(TreeImpl::new()),
        Box::new(Oracle::new()),
    ]
}

/// The implementations compared at today's x86 limits (`--arch x86-32k`): core, the modern
/// port's `modern-32k` state, tree and oracle, all at 32,764 user slots. The 2020 ports are
/// left out: their arrays hold v5.6's 512 entries by construction (`KVM_MEM_SLOTS_NUM` sizes
/// `memslots[]` and `id_to_index[]`), so they cannot run at a larger count.
pub fn x86_32k_implementations() -> Vec<Box<dyn Implementation>> {
    let arch = ArchProfile::X86_32k;
    vec![
        Box::new(CoreImpl::with_arch(arch)),
        Box::new(PortImpl::new(memslot_reference::Port::Modern32k)),
        Box::new(TreeImpl::with_arch(arch)),
        Box::new(Oracle::with_arch(arch)),
    ]
}

/// The implementations of a run at `arch` ([`standard_implementations`] at x86-512).
pub fn implementations_at(arch: ArchProfile) -> Vec<Box<dyn Implementation>> {
    match arch {
        ArchProfile::X86_512 => standard_implementations(),
        ArchProfile::X86_32k => x86_32k_implementations(),
    }
}

/// The standard set with the backend the fault is in (`core`, the array, or `tree`) replaced by
/// one with that fault injected (self-test).
pub fn implementations_with_fault(fault: memslot_core::Fault) -> Vec<Box<dyn Implementation>> {
    implementations_with_fault_at(ArchProfile::X86_512, fault)
}

/// [`implementations_with_fault`] for the implementations at `arch` ([`implementations_at`]).
pub fn implementations_with_fault_at(
    arch: ArchProfile,
    fault: memslot_core::Fault,
) -> Vec<Box<dyn Implementation>> {
    let mut impls = implementations_at(arch);
    for imp in impls.iter_mut() {
        match imp.name() {
            "core" if !fault.in_tree() => *imp = Box::new(CoreImpl::with_fault_at(arch, fault)),
            "tree" if fault.in_tree() => *imp = Box::new(TreeImpl::with_fault_at(arch, fault)),
            _ => {}
        }
    }
    impls
}

/// The standard set with `post15` replaced by a port broken on purpose (self-test): the same
/// code with `MEMSLOT_SELFTEST_DELETE_KEEPS_INDEX` compiled in (`memslot_reference::Port`).
pub fn implementations_with_broken_port() -> Vec<Box<dyn Implementation>> {
    with_port_replaced(
        memslot_reference::Port::Post15,
        memslot_reference::Port::Post15SelftestDeleteKeepsIndex,
    )
}

/// The standard set with `modern` replaced by its state broken on purpose (self-test):
/// `MEMSLOT_SELFTEST_STALE_CACHE`, a `last_used_slot` left naming a replaced slot.
pub fn implementations_with_broken_modern_port() -> Vec<Box<dyn Implementation>> {
    with_port_replaced(
        memslot_reference::Port::Modern,
        memslot_reference::Port::ModernSelftestStaleCache,
    )
}

fn with_port_replaced(
    port: memslot_reference::Port,
    broken: memslot_reference::Port,
) -> Vec<Box<dyn Implementation>> {
    let mut impls = standard_implementations();
    for imp in impls.iter_mut() {
        if imp.name() == port.name() {
            *imp = Box::new(PortImpl::new(broken));
        }
    }
    impls
}

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

/// The kinds of operation [`Stats::kinds`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Delete,
    Move,
    FlagsOnly,
    NoOp,
    /// An in-kernel create of a private id (509 and up).
    Private,
    Einval,
    Eexist,
    Enomem,
    LookupHit,
    LookupMiss,
    IdHit,
    IdMiss,
}

impl OpKind {
    pub const ALL: [OpKind; 13] = [
        OpKind::Create,
        OpKind::Delete,
        OpKind::Move,
        OpKind::FlagsOnly,
        OpKind::NoOp,
        OpKind::Private,
        OpKind::Einval,
        OpKind::Eexist,
        OpKind::Enomem,
        OpKind::LookupHit,
        OpKind::LookupMiss,
        OpKind::IdHit,
        OpKind::IdMiss,
    ];

    pub fn name(self) -> &'static str {
        [
            "create",
            "delete",
            "move",
            "flags-only",
            "no-op",
            "private",
            "EINVAL",
            "EEXIST",
            "ENOMEM",
            "lookup-hit",
            "lookup-miss",
            "id-hit",
            "id-miss",
        ][self as usize]
    }

    fn bit(self, as_id: u16) -> u32 {
        1 << (u32::from(as_id) * 16 + self as u32)
    }
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

/// Run `ops` on this process's implementations (the standard set, or a zoo bug's state with
/// core and oracle: [`crate::zoo::selected`]) with default options.
pub fn run(ops: &[Op]) -> RunResult {
    Runner::new(
        crate::zoo::selected().implementations(),
        RunOptions::default(),
    )
    .run(ops)
}

/// Drives a set of implementations in lockstep.
pub struct Runner {
    impls: Vec<Box<dyn Implementation>>,
    /// The limits every implementation runs at.
    arch: ArchProfile,
    opts: RunOptions,
    stats: Stats,
    /// Array of each AS after the last probed step (from the first implementation), and the
    /// (generation, LRU hints) it was probed with, to skip probing an unchanged state.
    probed: Vec<Option<(u64, Vec<Option<i64>>)>>,
    /// Array of each AS after the last step that compared it (the one all agreed on).
    layouts: Vec<Vec<ApiSlot>>,
    /// Buffer for the array being probed, reused across steps.
    current: Vec<ApiSlot>,
    /// Snapshot buffers, one per implementation, reused across steps.
    snaps: Vec<SpaceSnapshot>,
    /// Buffer for the fast path's per-implementation answers.
    quicks: Vec<Quick>,
    /// Address spaces some request has named so far.
    requested: Vec<bool>,
    /// Buffers the probes reuse from step to step.
    scratch: Scratch,
}

thread_local! {
    /// The buffers of the last finished run, for the next one on this thread (a fuzzer runs
    /// one program after another: their buffers are grown once).
    static SCRATCH: std::cell::Cell<Option<Scratch>> = const { std::cell::Cell::new(None) };
}

/// The runner's working buffers, kept from step to step (and run to run, see [`SCRATCH`]) so
/// that a step allocates nothing.
#[derive(Default)]
struct Scratch {
    /// Every implementation's answer to the step's operation.
    verdicts: Vec<Verdict>,
    /// Each implementation's WARN count before the step, and before the probes.
    warns: Vec<u64>,
    probe_warns: Vec<u64>,
    /// Each implementation's LRU hint before the probes (restored after them).
    lrus: Vec<Option<i64>>,
    /// Each implementation's answers to a round of lookups (with the compared LRU hint after
    /// each) and of id queries.
    searches: Vec<Vec<(Option<Found>, Option<i64>)>>,
    id_answers: Vec<Vec<Option<Found>>>,
    /// Every implementation's answer to one probe, and compared LRU hint after it.
    found: Vec<Option<Found>>,
    after: Vec<Option<i64>>,
    /// The probe points.
    gfns: Vec<u64>,
    ids: Vec<u16>,
    gfn_ranges: Ranges,
    hva_ranges: Ranges,
    /// Each implementation's answer to one range query (`false`: it cannot answer).
    answers: Vec<(bool, Vec<i32>)>,
}

/// Aspects that differ at one step: (aspect, detail lines).
type Findings = Vec<(String, Vec<String>)>;

impl Runner {
    pub fn new(impls: Vec<Box<dyn Implementation>>, opts: RunOptions) -> Runner {
        assert!(!impls.is_empty());
        let arch = impls[0].arch();
        if let Some(other) = impls.iter().find(|i| i.arch() != arch) {
            panic!(
                "a lockstep at one arch profile: {} is at {}, {} at {}",
                impls[0].name(),
                arch.name(),
                other.name(),
                other.arch().name()
            );
        }
        let n = usize::from(KVM_ADDRESS_SPACE_NUM);
        Runner {
            impls,
            arch,
            opts,
            stats: Stats::default(),
            probed: vec![None; n],
            layouts: vec![Vec::new(); n],
            current: Vec::new(),
            snaps: Vec::new(),
            quicks: Vec::new(),
            requested: vec![false; n],
            scratch: SCRATCH.with(|pool| pool.take()).unwrap_or_default(),
        }
    }

    /// The implementations' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.impls.iter().map(|i| i.name()).collect()
    }

    /// Run a whole program, stopping at the first divergence.
    pub fn run(mut self, ops: &[Op]) -> RunResult {
        let mut trace = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let step = i + 1;
            let full = self.opts.full_check_every > 0 && step % self.opts.full_check_every == 0;
            let full = full || step == ops.len();
            let (findings, shown) = self.step(op, full);
            let verdicts = std::mem::take(&mut self.scratch.verdicts);
            if self.opts.record {
                trace.push(self.trace(step, op, &verdicts));
            }
            if !findings.is_empty() {
                let divergence = self.divergence(step, ops, &verdicts, findings, shown);
                return RunResult {
                    stats: self.finish(),
                    divergence: Some(Box::new(divergence)),
                    trace,
                };
            }
            self.scratch.verdicts = verdicts;
        }
        RunResult {
            stats: self.finish(),
            divergence: None,
            trace,
        }
    }

    fn finish(mut self) -> Stats {
        let mut scratch = std::mem::take(&mut self.scratch);
        // Only empty buffers go back: a verdict's reason kept from one run to the next would
        // be an allocation that outlives its run, which makes libFuzzer run the input a
        // second time to look for a leak.
        scratch.verdicts.clear();
        SCRATCH.with(|pool| pool.set(Some(scratch)));
        self.stats.end = (0..KVM_ADDRESS_SPACE_NUM)
            .map(|as_id| {
                let (generation, used) = self.impls[0].summary(as_id);
                (used, generation)
            })
            .collect();
        self.stats
    }

    /// One operation on every implementation, then every comparison. Leaves the verdicts in
    /// `scratch.verdicts`; returns what differs and the address space the report should show.
    fn step(&mut self, op: &Op, full: bool) -> (Findings, u16) {
        self.stats.steps += 1;
        let (step, left) = (self.stats.steps, &mut self.stats.left);
        self.impls.retain(|imp| match imp.leaves_lockstep(op) {
            Some(why) => {
                left.push((imp.name(), step, why));
                false
            }
            None => true,
        });
        let mut warns = std::mem::take(&mut self.scratch.warns);
        warns.clear();
        warns.extend(self.impls.iter().map(|i| i.warn_count()));
        let mut verdicts = std::mem::take(&mut self.scratch.verdicts);
        verdicts.clear();
        verdicts.extend(self.impls.iter_mut().map(|imp| apply(imp.as_mut(), op)));
        self.count(op, &verdicts[verdicts.len() - 1]);

        let mut findings = Findings::new();
        self.compare_verdicts(op, &verdicts, &mut findings);
        self.check_warns(&warns, &mut findings);

        let touched = op.address_space();
        let reads_only = matches!(op, Op::Lookup { .. } | Op::Id { .. });
        if let Some(as_id) = touched.filter(|_| op.region().is_some()) {
            self.requested[usize::from(as_id)] = true;
        }
        // The address spaces to compare in full (at most both: no allocation).
        let mut chosen = [0u16; KVM_ADDRESS_SPACE_NUM as usize];
        let mut n = 0;
        let mut choose = |as_id: u16| {
            chosen[n] = as_id;
            n += 1;
        };
        if full {
            // Address spaces no request ever named get the cheap comparison below.
            (0..KVM_ADDRESS_SPACE_NUM)
                .filter(|&a| self.requested[usize::from(a)])
                .for_each(&mut choose);
        } else if reads_only {
            // A lookup can change nothing but the LRU hint: compare that, then probe.
            if let Some(as_id) = touched {
                let mut lrus = std::mem::take(&mut self.scratch.after);
                lrus.clear();
                lrus.extend(self.impls.iter_mut().map(|i| i.compared_lru(as_id)));
                let mut known = lrus.iter().flatten();
                let first = known.next();
                if !known.all(|l| Some(l) == first) {
                    findings.push((
                        format!("LRU hint of AS {as_id}"),
                        self.lines(&lrus, |l| lru_text(*l)),
                    ));
                }
                self.scratch.after = lrus;
                if findings.is_empty() && self.opts.probes {
                    let layout = std::mem::take(&mut self.layouts[usize::from(as_id)]);
                    let generation = self.impls[0].summary(as_id).0;
                    self.probe(as_id, op, generation, &layout, &layout, &mut findings);
                    self.layouts[usize::from(as_id)] = layout;
                }
            }
        } else {
            touched.into_iter().for_each(&mut choose);
        }
        let spaces = &chosen[..n];
        for &as_id in spaces {
            let a = usize::from(as_id);
            if let Some(q) = self.fast_compare(as_id, full) {
                // Everything the slow path below compares and checks agrees: the array all
                // implementations share is the probes' layout.
                self.stats.max_used = self.stats.max_used.max(q.used_slots);
                let mut now = std::mem::take(&mut self.current);
                now.clear();
                now.extend_from_slice(self.impls[0].quick_array());
                let before = std::mem::replace(&mut self.layouts[a], now);
                if findings.is_empty() && self.opts.probes {
                    let now = std::mem::take(&mut self.layouts[a]);
                    self.probe(as_id, op, q.generation, &now, &before, &mut findings);
                    self.layouts[a] = now;
                }
                self.current = before;
            } else {
                self.slow_compare(as_id, op, full, &mut findings);
            }
        }
        // The address spaces not compared in full: generation and used_slots.
        for as_id in (0..KVM_ADDRESS_SPACE_NUM).filter(|a| !spaces.contains(a)) {
            let first = self.impls[0].summary(as_id);
            if self.impls[1..]
                .iter_mut()
                .any(|i| i.summary(as_id) != first)
            {
                let summaries: Vec<(u64, i64)> =
                    self.impls.iter_mut().map(|i| i.summary(as_id)).collect();
                let details = self.lines(&summaries, |(g, u)| {
                    format!("generation {g}, used_slots {u}")
                });
                findings.push((format!("generation or used_slots of AS {as_id}"), details));
            }
        }
        self.check_warns(&warns, &mut findings);
        self.scratch.warns = warns;
        // An access outside an allocation comes first: whatever else differs follows from it.
        let faults: Vec<String> = self
            .impls
            .iter()
            .filter_map(|imp| imp.fault().map(|f| format!("{}: {f}", imp.name())))
            .collect();
        if !faults.is_empty() {
            findings.insert(0, (crate::report::OUT_OF_BOUNDS.to_string(), faults));
        }
        findings.dedup_by(|a, b| a.0 == b.0);
        let shown = findings
            .iter()
            .find_map(|(aspect, _)| aspect_as(aspect))
            .or(touched)
            .unwrap_or(0);
        self.scratch.verdicts = verdicts;
        (findings, shown)
    }

    /// The fast path: every implementation's [`Implementation::quick`] answer, the arrays
    /// compared as bytes, the generic invariants checked once on the shared state, then each
    /// implementation's own. `Some` only if all of it holds, which is exactly when
    /// [`Runner::slow_compare`] finds nothing (see the comments); on `None` the runner takes
    /// the slow path, which finds and reports what differs.
    fn fast_compare(&mut self, as_id: u16, full: bool) -> Option<Quick> {
        self.quicks.clear();
        for imp in self.impls.iter_mut() {
            let q = imp.quick(as_id)?;
            self.quicks.push(q);
        }
        let q0 = self.quicks[0];
        // used_slots and generation equal; every implementation's index map is the inverse of
        // its array and its walk is its array's ids (so, with equal arrays, the index maps
        // and walks are equal too, and inverse of the array as `check_snapshot` wants).
        let mut lru = None;
        for q in &self.quicks {
            if q.used_slots != q0.used_slots
                || q.generation != q0.generation
                || !q.index_is_inverse
                || !q.walk_is_array
            {
                return None;
            }
            // The LRU hints of the implementations that have one are equal.
            if let Some(l) = q.lru {
                if lru.is_some_and(|k| k != l) {
                    return None;
                }
                lru = Some(l);
            }
        }
        // Equal arrays: byte for byte, which is every `Slot` field (and the ports' dirty
        // bitmap presence, see `packed_slot`).
        let shared = self.impls[0].quick_array();
        let bytes = api_slot_bytes(shared);
        if shared.len() as i64 != q0.used_slots
            || self.impls[1..]
                .iter()
                .any(|imp| api_slot_bytes(imp.quick_array()) != bytes)
        {
            return None;
        }
        // `check_snapshot` of the shared state (the checks the agreement above does not
        // already cover): used_slots in range, npages > 0, ids in range, strictly descending
        // bases without overlap, the LRU hint inside the array bounds.
        let slots_num = self.arch.mem_slots_num();
        if !(0..=i64::from(slots_num)).contains(&q0.used_slots)
            || !shared_array_ok(shared, slots_num)
            || lru.is_some_and(|l| !(0..i64::from(slots_num)).contains(&l))
        {
            return None;
        }
        for imp in self.impls.iter_mut() {
            if !imp.quick_invariants(as_id, full) {
                return None;
            }
        }
        Some(q0)
    }

    /// Snapshots of `as_id` from every implementation, compared and checked; then the probes.
    fn slow_compare(&mut self, as_id: u16, op: &Op, full: bool, findings: &mut Findings) {
        let mut snaps = std::mem::take(&mut self.snaps);
        snaps.resize_with(self.impls.len(), SpaceSnapshot::default);
        for (imp, snap) in self.impls.iter_mut().zip(snaps.iter_mut()) {
            imp.snapshot_into(as_id, full, snap);
        }
        let before = findings.len();
        self.compare_states(as_id, &snaps, findings);
        // Equal snapshots satisfy the generic invariants together: check one (with an LRU).
        let agreed = findings.len() == before;
        for (k, (imp, snap)) in self.impls.iter_mut().zip(&snaps).enumerate() {
            let generic = if agreed && k > 0 && snap.lru.is_some() == snaps[0].lru.is_some() {
                Ok(())
            } else {
                check_snapshot(snap, self.arch.mem_slots_num())
            };
            if let Err(e) = generic.and_then(|()| imp.check_invariants(&[as_id], full)) {
                findings.push((
                    format!("invariant of {}: AS {as_id}: {e}", imp.name()),
                    Vec::new(),
                ));
            }
        }
        self.stats.max_used = self.stats.max_used.max(snaps[0].used_slots);
        let a = usize::from(as_id);
        let now: Vec<ApiSlot> = snaps[0].slots.iter().map(packed_slot).collect();
        if findings.is_empty() && self.opts.probes {
            let before = std::mem::take(&mut self.layouts[a]);
            self.probe(as_id, op, snaps[0].generation, &now, &before, findings);
        }
        self.layouts[a] = now;
        self.snaps = snaps;
    }

    fn count(&mut self, op: &Op, verdict: &Verdict) {
        match verdict {
            Verdict::Rc { rc, .. } => *self.stats.rcs.entry(*rc).or_default() += 1,
            Verdict::Lookup(Some(_)) => self.stats.lookup_hits += 1,
            Verdict::Lookup(None) => self.stats.lookup_misses += 1,
            Verdict::Id(Some(_)) => self.stats.id_hits += 1,
            Verdict::Id(None) => self.stats.id_misses += 1,
            Verdict::Armed(_) => {}
        }
        let Some(as_id) = op.address_space() else {
            return;
        };
        if let Some(kind) = self.op_kind(verdict) {
            self.stats.kinds |= kind.bit(as_id);
            let private = matches!(op, Op::KSet(r) if r.id() >= self.arch.user_mem_slots());
            if private && kind == OpKind::Create {
                self.stats.kinds |= OpKind::Private.bit(as_id);
            }
        }
    }

    /// What kind of operation a verdict says a step was (the oracle's verdict for requests).
    fn op_kind(&self, verdict: &Verdict) -> Option<OpKind> {
        match verdict {
            // The last implementation is the oracle, which names what a request changed.
            Verdict::Rc { rc: 0, .. } => self.impls.last().and_then(|i| i.last_change()),
            Verdict::Rc { rc: -22, .. } => Some(OpKind::Einval),
            Verdict::Rc { rc: -17, .. } => Some(OpKind::Eexist),
            Verdict::Rc { rc: -12, .. } => Some(OpKind::Enomem),
            Verdict::Rc { .. } | Verdict::Armed(_) => None,
            Verdict::Lookup(found) => Some(if found.is_some() {
                OpKind::LookupHit
            } else {
                OpKind::LookupMiss
            }),
            Verdict::Id(found) => Some(if found.is_some() {
                OpKind::IdHit
            } else {
                OpKind::IdMiss
            }),
        }
    }

    /// "core: x" lines for per-implementation values.
    fn lines<T>(&self, values: &[T], show: impl Fn(&T) -> String) -> Vec<String> {
        self.impls
            .iter()
            .zip(values)
            .map(|(imp, v)| format!("{:<7} {}", imp.name(), show(v)))
            .collect()
    }

    fn compare_verdicts(&self, op: &Op, verdicts: &[Verdict], findings: &mut Findings) {
        // The answers, reasons aside (compared below among those who give one).
        let same = |a: &Verdict, b: &Verdict| match (a, b) {
            (Verdict::Rc { rc: x, .. }, Verdict::Rc { rc: y, .. }) => x == y,
            _ => a == b,
        };
        if !verdicts.windows(2).all(|w| same(&w[0], &w[1])) {
            let aspect = match op {
                Op::Set(_) | Op::KSet(_) | Op::Set2(_) => "return code".to_string(),
                Op::Lookup { as_id, gfn } => format!("lookup gfn {gfn:#x} in AS {as_id}"),
                Op::Id { as_id, id } => format!("id_to_memslot of id {id} in AS {as_id}"),
                Op::FailPrepare { .. } => "fail-prepare".to_string(),
            };
            findings.push((aspect, self.lines(verdicts, Verdict::text)));
            return;
        }
        // Same errno: the core and the oracle also name the validation step; they must agree.
        let reasons = || {
            self.impls
                .iter()
                .zip(verdicts)
                .filter_map(|(imp, v)| match v {
                    Verdict::Rc {
                        reason: Some(r), ..
                    } => Some((imp.name(), r)),
                    _ => None,
                })
        };
        let mut given = reasons().map(|(_, r)| r);
        let first = given.next();
        if !given.all(|r| Some(r) == first) {
            let reasons: Vec<(&str, &String)> = reasons().collect();
            let details = reasons.iter().map(|(n, r)| format!("{n:<7} {r}")).collect();
            findings.push((
                "validation step that refused the request".to_string(),
                details,
            ));
        }
    }

    fn check_warns(&self, before: &[u64], findings: &mut Findings) {
        for (imp, &b) in self.impls.iter().zip(before) {
            let now = imp.warn_count();
            if now > b {
                let what = imp
                    .last_warn()
                    .unwrap_or_else(|| "(no location)".to_string());
                findings.push((
                    format!("WARN in {}: {what}", imp.name()),
                    vec![format!("{} WARN hit(s) during this step", now - b)],
                ));
            }
        }
    }

    fn compare_states(&self, as_id: u16, snaps: &[SpaceSnapshot], findings: &mut Findings) {
        let field =
            |f: &dyn Fn(&SpaceSnapshot) -> String| -> Vec<String> { self.lines(snaps, |s| f(s)) };
        if !all_equal_by(snaps, |s| s.used_slots) {
            findings.push((
                format!("used_slots of AS {as_id}"),
                field(&|s| s.used_slots.to_string()),
            ));
        }
        if !all_equal_by(snaps, |s| &s.slots) {
            let i = first_difference(snaps.iter().map(|s| &s.slots[..]));
            let details = field(&|s| match s.slots.get(i) {
                Some(slot) => slot_text(slot),
                None => "(no entry)".to_string(),
            });
            findings.push((format!("array of AS {as_id} (index {i})"), details));
        }
        if !all_equal_by(snaps, |s| &s.index) {
            let id = first_index_difference(snaps);
            let details = field(&|s| match s.index.binary_search_by_key(&id, |e| e.0) {
                Ok(k) => format!("index {}", s.index[k].1),
                Err(_) => "absent".to_string(),
            });
            findings.push((format!("index of id {id} in AS {as_id}"), details));
        }
        if !all_equal_by(snaps, |s| &s.walk) {
            findings.push((
                format!("walk of AS {as_id}"),
                field(&|s| format!("{:?}", s.walk)),
            ));
        }
        if !all_equal_by(snaps, |s| s.generation) {
            findings.push((
                format!("generation of AS {as_id}"),
                field(&|s| s.generation.to_string()),
            ));
        }
        let lrus: Vec<i64> = snaps.iter().filter_map(|s| s.lru).collect();
        if !all_equal(&lrus) {
            findings.push((
                format!("LRU hint of AS {as_id}"),
                field(&|s| lru_text(s.lru)),
            ));
        }
    }

    /// Lookups and id queries at interesting places, with the LRU hints restored afterwards.
    /// `layout` is the array now, `before` the one before the operation.
    fn probe(
        &mut self,
        as_id: u16,
        op: &Op,
        generation: u64,
        layout: &[ApiSlot],
        before: &[ApiSlot],
        findings: &mut Findings,
    ) {
        let a = usize::from(as_id);
        let mut sc = std::mem::take(&mut self.scratch);
        sc.lrus.clear();
        sc.lrus.extend(self.impls.iter_mut().map(|i| i.lru(as_id)));
        match &mut self.probed[a] {
            // Same array, same hints: the probes would repeat the last ones.
            Some((g, hints)) if *g == generation && *hints == sc.lrus => {
                self.scratch = sc;
                return;
            }
            Some((g, hints)) => {
                *g = generation;
                hints.clone_from(&sc.lrus);
            }
            probed @ None => *probed = Some((generation, sc.lrus.clone())),
        }
        probe_points(self.arch, layout, before, op, &mut sc.gfns, &mut sc.ids);
        sc.probe_warns.clear();
        sc.probe_warns
            .extend(self.impls.iter().map(|i| i.warn_count()));
        'probes: {
            // Every implementation does its round of lookups, then the answers are compared
            // probe by probe: each one's lookups and hints evolve by its own answers only.
            let n = self.impls.len();
            sc.searches.resize_with(n, Vec::new);
            for (imp, answers) in self.impls.iter_mut().zip(sc.searches.iter_mut()) {
                imp.search_each(as_id, &sc.gfns, answers);
            }
            for (k, &gfn) in sc.gfns.iter().enumerate() {
                self.stats.probes += 1;
                sc.found.clear();
                sc.found.extend(sc.searches.iter().map(|a| a[k].0));
                if !all_equal(&sc.found) {
                    let details = self.lines(&sc.found, |f| found_text(f.as_ref()));
                    findings.push((
                        format!("lookup gfn {gfn:#x} in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
                sc.after.clear();
                sc.after.extend(sc.searches.iter().map(|a| a[k].1));
                let mut known = sc.after.iter().flatten();
                let first = known.next();
                if !known.all(|l| Some(l) == first) {
                    let details = self.lines(&sc.after, |l| lru_text(*l));
                    findings.push((
                        format!("LRU hint of AS {as_id} after probe lookup gfn {gfn:#x}"),
                        details,
                    ));
                    break 'probes;
                }
            }
            sc.id_answers.resize_with(n, Vec::new);
            for (imp, answers) in self.impls.iter_mut().zip(sc.id_answers.iter_mut()) {
                imp.id_to_memslot_each(as_id, &sc.ids, answers);
            }
            for (k, &id) in sc.ids.iter().enumerate() {
                self.stats.probes += 1;
                sc.found.clear();
                sc.found.extend(sc.id_answers.iter().map(|a| a[k]));
                if !all_equal(&sc.found) {
                    let details = self.lines(&sc.found, |f| found_text(f.as_ref()));
                    findings.push((
                        format!("id_to_memslot of id {id} in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
            }
            // A lookup or an id query changes no slot: the ranges answer as after the last
            // request, which compared them.
            if op.region().is_none() {
                break 'probes;
            }
            range_points(layout, before, op, &mut sc.gfn_ranges, &mut sc.hva_ranges);
            sc.answers.resize_with(self.impls.len(), Default::default);
            let queries = sc
                .gfn_ranges
                .iter()
                .map(|&r| (false, r))
                .chain(sc.hva_ranges.iter().map(|&r| (true, r)));
            for (hva, (start, end)) in queries {
                self.stats.probes += 1;
                for (imp, (answered, ids)) in self.impls.iter_mut().zip(sc.answers.iter_mut()) {
                    *answered = if hva {
                        imp.hva_range(as_id, start, end, ids)
                    } else {
                        imp.gfn_range(as_id, start, end, ids)
                    };
                }
                let mut known = sc.answers.iter().filter(|a| a.0).map(|a| &a.1);
                let first = known.next();
                if !known.all(|ids| Some(ids) == first) {
                    let details = self.lines(&sc.answers, |(answered, ids)| {
                        if *answered {
                            format!("{ids:?}")
                        } else {
                            "(not supported)".to_string()
                        }
                    });
                    let what = if hva { "host addresses" } else { "GFNs" };
                    findings.push((
                        format!("slots in {what} [{start:#x}, {end:#x}) in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
            }
        }
        for (imp, lru) in self.impls.iter_mut().zip(&sc.lrus) {
            if let Some(lru) = lru {
                imp.set_lru(as_id, *lru);
            }
        }
        self.check_warns(&sc.probe_warns, findings);
        self.scratch = sc;
    }

    fn trace(&mut self, step: usize, op: &Op, verdicts: &[Verdict]) -> StepTrace {
        let mut states = BTreeMap::new();
        for imp in self.impls.iter_mut() {
            let spaces = (0..KVM_ADDRESS_SPACE_NUM)
                .map(|a| imp.snapshot(a, true))
                .collect();
            states.insert(imp.name(), spaces);
        }
        StepTrace {
            step,
            op: op.to_string(),
            verdicts: self
                .impls
                .iter()
                .map(|i| i.name())
                .zip(verdicts.iter().cloned())
                .collect(),
            states,
        }
    }

    fn divergence(
        &mut self,
        step: usize,
        ops: &[Op],
        verdicts: &[Verdict],
        findings: Findings,
        shown: u16,
    ) -> Divergence {
        let mut findings = findings.into_iter();
        let (aspect, details) = findings.next().expect("a finding");
        let snapshots = self
            .impls
            .iter_mut()
            .map(|i| (i.name(), i.snapshot(shown, true)))
            .collect();
        Divergence {
            step,
            op: ops[step - 1],
            aspect,
            details,
            also: findings.map(|(a, _)| a).collect(),
            verdicts: self
                .impls
                .iter()
                .map(|i| i.name())
                .zip(verdicts.iter().map(Verdict::text))
                .collect(),
            tables: vec![(shown, snapshots)],
            ops: ops[..step].to_vec(),
            total: ops.len(),
            op_kind: verdicts.last().and_then(|v| self.op_kind(v)),
        }
    }
}

/// Apply one operation to one implementation.
fn apply(imp: &mut dyn Implementation, op: &Op) -> Verdict {
    match op {
        Op::Set(r) => {
            let rc = imp.set_user_memory_region(r);
            Verdict::Rc {
                rc,
                reason: if rc != 0 { imp.last_reason() } else { None },
            }
        }
        Op::KSet(r) => {
            let rc = imp.set_memory_region(r);
            Verdict::Rc {
                rc,
                reason: if rc != 0 { imp.last_reason() } else { None },
            }
        }
        Op::Set2(r) => {
            let rc = imp.set_user_memory_region2(r);
            Verdict::Rc {
                rc,
                reason: if rc != 0 { imp.last_reason() } else { None },
            }
        }
        Op::Lookup { as_id, gfn } => Verdict::Lookup(imp.search(*as_id, *gfn)),
        Op::Id { as_id, id } => Verdict::Id(imp.id_to_memslot(*as_id, *id)),
        Op::FailPrepare { errno } => {
            imp.set_prepare_error(*errno);
            Verdict::Armed(*errno)
        }
    }
}

/// The GFNs and ids to probe after `op`. Small layouts are probed everywhere; large ones
/// around the slots the operation touched (`before` is the layout before it), plus 0 and the
/// top of the GFN space.
pub fn probe_points(
    arch: ArchProfile,
    layout: &[ApiSlot],
    before: &[ApiSlot],
    op: &Op,
    gfns: &mut Vec<u64>,
    ids: &mut Vec<u16>,
) {
    gfns.clear();
    gfns.extend([0, 1, MAX_GFN, u64::MAX >> 12, u64::MAX]);
    ids.clear();
    // Both sides of the user and the private limit (x86-512: 508 ... 512).
    let (user, all) = (arch.user_mem_slots(), arch.mem_slots_num());
    ids.extend([0, 1, user - 1, user, user + 1, all - 1, all, u16::MAX]);
    match op {
        Op::Set(r) | Op::KSet(r) => ids.push(r.id()),
        Op::Id { id, .. } => ids.push(*id),
        _ => {}
    }
    // The slots to probe around: all of them, or (at most 5 places, 3 slots each) near
    // what the operation touched.
    let mut near = [0usize; 15];
    let mut chosen = 0;
    let all = layout.len() <= PROBE_ALL_LIMIT;
    if !all {
        let mut around = |gfn: u64| {
            // First index whose base is <= gfn, and its neighbours.
            let i = layout.partition_point(|s| s.base_gfn > gfn);
            for k in i.saturating_sub(1)..(i + 2).min(layout.len()) {
                near[chosen] = k;
                chosen += 1;
            }
        };
        match op {
            Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => {
                around(r.guest_phys_addr >> 12);
                if let Some(old) = before.iter().find(|s| i32::from(s.id) == i32::from(r.id())) {
                    around(old.base_gfn);
                }
                if let Some(now) = layout.iter().find(|s| i32::from(s.id) == i32::from(r.id())) {
                    around(now.base_gfn);
                }
            }
            Op::Lookup { gfn, .. } => around(*gfn),
            Op::Id { .. } | Op::FailPrepare { .. } => {}
        }
        around(0);
        around(MAX_GFN);
        near[..chosen].sort_unstable();
    }
    let chosen = if all { 0..layout.len() } else { 0..chosen };
    for k in chosen {
        let i = if all { k } else { near[k] };
        if !all && k > 0 && near[k - 1] == i {
            continue;
        }
        let s = &layout[i];
        let end = s.base_gfn.saturating_add(s.npages);
        gfns.extend([s.base_gfn, end - 1, s.base_gfn.wrapping_sub(1), end]);
        if let Some(lower) = layout.get(i + 1) {
            let gap_start = lower.base_gfn.saturating_add(lower.npages);
            if s.base_gfn > gap_start + 1 {
                gfns.push(gap_start + (s.base_gfn - gap_start) / 2);
            }
        }
        ids.push(s.id as u16);
    }
    gfns.sort_unstable();
    gfns.dedup();
    ids.sort_unstable();
    ids.dedup();
}

/// Half-open ranges `[start, end)` to query.
pub type Ranges = Vec<(u64, u64)>;

/// The GFN ranges and host address ranges to query after `op` (range queries are compared
/// as the ids they return, in walk order): the whole space, and around what the operation
/// named and the slot it changed: the request's own range, a page either side of its start
/// and of its end, the old slot's range; for a lookup, its GFN alone. A handful each.
pub fn range_points(
    layout: &[ApiSlot],
    before: &[ApiSlot],
    op: &Op,
    gfns: &mut Ranges,
    hvas: &mut Ranges,
) {
    const PAGE: u64 = 1 << 12;
    gfns.clear();
    gfns.push((0, u64::MAX));
    hvas.clear();
    hvas.push((0, u64::MAX));
    let mut around = |s: &ApiSlot| {
        let end = s.base_gfn.saturating_add(s.npages);
        gfns.push((s.base_gfn, end));
        let hva_end = s
            .userspace_addr
            .saturating_add(s.npages.saturating_mul(PAGE));
        hvas.push((s.userspace_addr, hva_end));
    };
    match op {
        Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => {
            let id = i32::from(r.id());
            if let Some(old) = before.iter().find(|s| i32::from(s.id) == id) {
                around(old);
            }
            if let Some(now) = layout.iter().find(|s| i32::from(s.id) == id) {
                around(now);
            }
            let (gfn, npages) = (r.guest_phys_addr >> 12, r.memory_size >> 12);
            let end = gfn.saturating_add(npages);
            gfns.extend([
                (gfn, end),
                (gfn.saturating_sub(1), gfn.saturating_add(1)),
                (end.saturating_sub(1), end.saturating_add(1)),
            ]);
            let hva = r.userspace_addr;
            let hva_end = hva.saturating_add(r.memory_size);
            hvas.extend([
                (hva, hva_end),
                (hva.saturating_sub(PAGE), hva.saturating_add(1)),
                (hva_end.saturating_sub(1), hva_end.saturating_add(PAGE)),
            ]);
        }
        Op::Lookup { gfn, .. } => gfns.push((*gfn, gfn.saturating_add(1))),
        Op::Id { .. } | Op::FailPrepare { .. } => {}
    }
    gfns.sort_unstable();
    gfns.dedup();
    hvas.sort_unstable();
    hvas.dedup();
}

/// The per-entry part of [`check_snapshot`] on an array in the ports' copy format: npages > 0,
/// ids below `KVM_MEM_SLOTS_NUM`, bases strictly descending, no two neighbours overlapping.
fn shared_array_ok(slots: &[ApiSlot], slots_num: u16) -> bool {
    let entry_ok = |s: &ApiSlot| s.npages != 0 && (0..slots_num as i16).contains(&s.id);
    slots.first().map_or(true, entry_ok)
        && slots.windows(2).all(|w| {
            entry_ok(&w[1])
                && w[0].base_gfn > w[1].base_gfn
                && w[1].base_gfn.saturating_add(w[1].npages) <= w[0].base_gfn
        })
}

fn all_equal<T: PartialEq>(values: &[T]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

fn all_equal_by<'a, T, K: PartialEq>(values: &'a [T], key: impl Fn(&'a T) -> K) -> bool {
    let mut keys = values.iter().map(key);
    match keys.next() {
        Some(first) => keys.all(|k| k == first),
        None => true,
    }
}

/// The first array index at which the arrays differ.
fn first_difference<'a>(mut arrays: impl Iterator<Item = &'a [Slot]>) -> usize {
    let first = arrays.next().unwrap_or_default();
    arrays
        .map(|a| {
            (0..a.len().max(first.len()))
                .find(|&i| a.get(i) != first.get(i))
                .unwrap_or(usize::MAX)
        })
        .min()
        .unwrap_or(0)
}

/// The lowest id whose normalised index differs between implementations.
fn first_index_difference(snaps: &[SpaceSnapshot]) -> u16 {
    let lookup = |s: &SpaceSnapshot, id: u16| {
        s.index
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|k| s.index[k].1)
    };
    let mut ids: Vec<u16> = snaps
        .iter()
        .flat_map(|s| s.index.iter().map(|e| e.0))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .find(|&id| !all_equal_by(snaps, |s| lookup(s, id)))
        .unwrap_or(0)
}

/// `id 3 base 0x100 npages 0x200 flags dirty hva 0x7f0000000000`.
pub fn slot_text(s: &Slot) -> String {
    format!(
        "id {} base {:#x} npages {:#x} flags {} hva {:#x}",
        s.id,
        s.base_gfn,
        s.npages,
        crate::report::flag_letters(s.flags),
        s.userspace_addr
    )
}

fn lru_text(lru: Option<i64>) -> String {
    lru.map_or_else(|| "(none)".to_string(), |l| l.to_string())
}

/// The address space an aspect names (`... AS 1 ...`), so the report shows that one.
fn aspect_as(aspect: &str) -> Option<u16> {
    let rest = &aspect[aspect.find("AS ")? + 3..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
