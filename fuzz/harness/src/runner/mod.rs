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

use crate::arch_profile::ArchProfile;
use crate::implementations::oracle::packed_slot;
use crate::implementations::{check_snapshot, Found, Implementation, Quick, SpaceSnapshot};
use crate::ops::{Op, KVM_ADDRESS_SPACE_NUM};

mod compare;
mod outcome;
mod probes;
mod ranges;
mod sets;

pub use compare::slot_text;
use compare::{aspect_as, lru_text, shared_array_ok};
pub use outcome::*;
pub use probes::{probe_points, PROBE_ALL_LIMIT};
pub use ranges::{range_points, Ranges};
pub use sets::*;

/// The aspect of a divergence in which an implementation accessed memory outside an allocation
/// (caught by the shim's guard pages).
pub const OUT_OF_BOUNDS: &str = "out-of-bounds access";

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
            findings.insert(0, (OUT_OF_BOUNDS.to_string(), faults));
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
