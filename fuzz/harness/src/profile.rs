//! Where a fuzz target's time goes: with `MEMSLOT_DIFF_PROFILE=FILE` the scenario targets time
//! every call into every implementation ([`Timed`]) and write the totals ([`Profile`]) to FILE
//! at exit (`ci/throughput` reads them; `memslot-diff throughput` takes the same breakdown in
//! its own process with [`Profile::record`]).
//!
//! The breakdown costs two clock reads per call into an implementation, so it is taken in a
//! pass of its own and the executions per second in a pass without it.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::implementations::{Found, Implementation, Quick, SpaceSnapshot};
use crate::ops::Region;
use crate::runner::{OpKind, RunOptions, Runner};
use crate::target::Target;
use crate::zoo;

/// Where the time of a set of executions went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Profile {
    pub executions: u64,
    pub operations: u64,
    /// Decoding the input into a program (the generators run here).
    pub generation_ns: u64,
    /// The whole lockstep run: every implementation and every comparison (the clock's own
    /// cost taken off, see `clock_cost`).
    pub run_ns: u64,
    /// Inside each implementation's calls, by name.
    pub implementations_ns: BTreeMap<String, u64>,
}

impl Profile {
    /// Time outside every implementation: comparisons, probes' bookkeeping, snapshots'
    /// normalisation, the runner itself.
    pub fn comparison_ns(&self) -> u64 {
        let inside: u64 = self.implementations_ns.values().sum();
        self.run_ns.saturating_sub(inside)
    }

    /// `(part, share of generation + run)`: generation, each implementation, comparison.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let total = (self.generation_ns + self.run_ns).max(1) as f64;
        let mut out = vec![("generation".to_string(), self.generation_ns as f64 / total)];
        out.extend(
            self.implementations_ns
                .iter()
                .map(|(name, &ns)| (name.clone(), ns as f64 / total)),
        );
        out.push((
            "comparison".to_string(),
            self.comparison_ns() as f64 / total,
        ));
        out
    }

    /// Add `other`'s counts and times to this profile.
    pub fn add(&mut self, other: &Profile) {
        self.executions += other.executions;
        self.operations += other.operations;
        self.generation_ns += other.generation_ns;
        self.run_ns += other.run_ns;
        for (name, ns) in &other.implementations_ns {
            *self.implementations_ns.entry(name.clone()).or_default() += ns;
        }
    }

    /// Decode and run one input of a scenario target with every call into an implementation
    /// timed, adding the times to this profile. Whether every implementation agreed.
    pub fn record(&mut self, target: Target, data: &[u8]) -> bool {
        let start = Instant::now();
        let program = target.decode(data);
        let decoded = Instant::now();
        let mut clocks = Vec::new();
        let impls: Vec<Box<dyn Implementation>> = zoo::selected()
            .implementations()
            .into_iter()
            .map(|inner| {
                let clock = Clock::default();
                clocks.push(clock.clone());
                Box::new(Timed { inner, clock }) as Box<dyn Implementation>
            })
            .collect();
        let names: Vec<&'static str> = impls.iter().map(|i| i.name()).collect();
        let agreed = Runner::new(impls, RunOptions::default())
            .run(&program.ops)
            .agreed();
        let ran = Instant::now();
        let (inside, outside) = clock_cost();
        let calls: u64 = clocks.iter().map(|c| c.get().1).sum();
        self.executions += 1;
        self.operations += program.ops.len() as u64;
        self.generation_ns += nanos(decoded - start);
        let clock_ns = (calls as f64 * (inside + outside)) as u64;
        self.run_ns += nanos(ran - decoded).saturating_sub(clock_ns);
        for (name, clock) in names.into_iter().zip(&clocks) {
            let (ns, calls) = clock.get();
            let own = ns.saturating_sub((calls as f64 * inside) as u64);
            *self.implementations_ns.entry(name.to_string()).or_default() += own;
        }
        agreed
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds spent inside one implementation and the number of calls, shared with its
/// [`Timed`] wrapper.
#[derive(Clone, Default)]
struct Clock(std::rc::Rc<std::cell::Cell<(u64, u64)>>);

impl Clock {
    fn get(&self) -> (u64, u64) {
        self.0.get()
    }

    fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let (ns, calls) = self.0.get();
        self.0.set((ns + nanos(start.elapsed()), calls + 1));
        out
    }
}

/// What timing one call costs, in nanoseconds: `(inside, outside)`, the part a [`Clock`]
/// records as the call's own time and the part it adds around it. Measured once per process
/// on empty calls, and taken off every timed call's figures so that the clock's cost does not
/// show as time in the implementations or in the comparison.
fn clock_cost() -> (f64, f64) {
    static COST: OnceLock<(f64, f64)> = OnceLock::new();
    *COST.get_or_init(|| {
        const CALLS: u32 = 200_000;
        let clock = Clock::default();
        let start = Instant::now();
        for _ in 0..CALLS {
            clock.time(|| std::hint::black_box(()));
        }
        let total = start.elapsed().as_nanos() as f64 / f64::from(CALLS);
        let inside = clock.get().0 as f64 / f64::from(CALLS);
        (inside, (total - inside).max(0.0))
    })
}

/// An implementation whose every call is timed into a [`Clock`].
struct Timed {
    inner: Box<dyn Implementation>,
    clock: Clock,
}

impl Implementation for Timed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn arch(&self) -> crate::ArchProfile {
        self.inner.arch()
    }
    fn last_change(&self) -> Option<OpKind> {
        self.clock.time(|| self.inner.last_change())
    }
    fn set_user_memory_region(&mut self, r: &Region) -> i32 {
        self.clock.time(|| self.inner.set_user_memory_region(r))
    }
    fn set_memory_region(&mut self, r: &Region) -> i32 {
        self.clock.time(|| self.inner.set_memory_region(r))
    }
    fn last_reason(&self) -> Option<String> {
        self.clock.time(|| self.inner.last_reason())
    }
    fn search(&mut self, as_id: u16, gfn: u64) -> Option<Found> {
        self.clock.time(|| self.inner.search(as_id, gfn))
    }
    fn id_to_memslot(&mut self, as_id: u16, id: u16) -> Option<Found> {
        self.clock.time(|| self.inner.id_to_memslot(as_id, id))
    }
    fn search_each(
        &mut self,
        as_id: u16,
        gfns: &[u64],
        out: &mut Vec<(Option<Found>, Option<i64>)>,
    ) {
        self.clock.time(|| self.inner.search_each(as_id, gfns, out))
    }
    fn id_to_memslot_each(&mut self, as_id: u16, ids: &[u16], out: &mut Vec<Option<Found>>) {
        self.clock
            .time(|| self.inner.id_to_memslot_each(as_id, ids, out))
    }
    fn gfn_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        self.clock
            .time(|| self.inner.gfn_range(as_id, start, end, out))
    }
    fn hva_range(&mut self, as_id: u16, start: u64, end: u64, out: &mut Vec<i32>) -> bool {
        self.clock
            .time(|| self.inner.hva_range(as_id, start, end, out))
    }
    fn summary(&mut self, as_id: u16) -> (u64, i64) {
        self.clock.time(|| self.inner.summary(as_id))
    }
    fn snapshot_into(&mut self, as_id: u16, full: bool, out: &mut SpaceSnapshot) {
        self.clock
            .time(|| self.inner.snapshot_into(as_id, full, out))
    }
    fn lru(&mut self, as_id: u16) -> Option<i64> {
        self.clock.time(|| self.inner.lru(as_id))
    }
    fn compared_lru(&mut self, as_id: u16) -> Option<i64> {
        self.clock.time(|| self.inner.compared_lru(as_id))
    }
    fn set_lru(&mut self, as_id: u16, lru: i64) {
        self.clock.time(|| self.inner.set_lru(as_id, lru))
    }
    fn warn_count(&self) -> u64 {
        self.clock.time(|| self.inner.warn_count())
    }
    fn last_warn(&self) -> Option<String> {
        self.clock.time(|| self.inner.last_warn())
    }
    fn fault(&self) -> Option<String> {
        self.clock.time(|| self.inner.fault())
    }
    fn check_invariants(&mut self, as_ids: &[u16], full: bool) -> Result<(), String> {
        self.clock
            .time(|| self.inner.check_invariants(as_ids, full))
    }
    fn set_prepare_error(&mut self, errno: i32) {
        self.clock.time(|| self.inner.set_prepare_error(errno))
    }
    fn quick(&mut self, as_id: u16) -> Option<Quick> {
        self.clock.time(|| self.inner.quick(as_id))
    }
    fn quick_array(&self) -> &[memslot_reference::ApiSlot] {
        self.inner.quick_array()
    }
    fn quick_invariants(&mut self, as_id: u16, full: bool) -> bool {
        self.clock.time(|| self.inner.quick_invariants(as_id, full))
    }
}

/// The fuzz targets' profile under `MEMSLOT_DIFF_PROFILE=FILE` (see the module comment):
/// `None` when the variable is unset. Written to FILE as JSON when the process exits.
pub fn env_profile() -> Option<&'static Mutex<Profile>> {
    static PROFILE: OnceLock<Option<(String, Mutex<Profile>)>> = OnceLock::new();
    extern "C" fn write_at_exit() {
        if let Some((path, profile)) = PROFILE.get().and_then(Option::as_ref) {
            if let Ok(profile) = profile.lock() {
                let text = serde_json::to_string_pretty(&*profile).unwrap_or_default();
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("MEMSLOT_DIFF_PROFILE: {path}: {e}");
                }
            }
        }
    }
    extern "C" {
        fn atexit(callback: extern "C" fn()) -> i32;
    }
    PROFILE
        .get_or_init(|| {
            let path = std::env::var("MEMSLOT_DIFF_PROFILE")
                .ok()
                .filter(|p| !p.is_empty())?;
            // SAFETY: registers a plain function; libFuzzer leaves through exit().
            unsafe { atexit(write_at_exit) };
            Some((path, Mutex::new(Profile::default())))
        })
        .as_ref()
        .map(|(_, profile)| profile)
}
