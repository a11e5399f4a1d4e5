//! Every implementation behind the harness's `Implementation` trait, side by side in one
//! process: the memslot core (`core`), its tree backend (`tree`), the C ports (`pre`, `post`
//! and `post15`, with `pre-fixed` and `post-fixed`, the harness's standard set), the port of
//! today's tree-based code (`modern`) and the oracle, at 8, 64 and 509 slots; at 32,764 (today's
//! x86 limit, the x86-32k profile) the core and the tree at those limits and the modern port built for it
//! (`modern-32k`; the 2020 ports' arrays stop at 512). The last column compares the modern port
//! with the Rust tree, the design it ports.
//!
//! Requests: create N slots in ascending, descending and random GFN order, delete all N,
//! move the lowest slot above the highest and back, toggle dirty logging on and off on every
//! slot, repeat a request that changes nothing. Lookups (`search`, 1024 per iteration): a
//! last-used (LRU) hit, a hit that misses the LRU hint, a miss in a gap between two slots, a
//! miss below the lowest slot. Slot `i` is one page at `BASE_GFN + 2i`, so a gap lies above
//! each slot.
//!
//! ```sh
//! taskset -c 1 cargo bench -p memslot-harness --bench implementations            # everything
//! taskset -c 1 cargo bench -p memslot-harness --bench implementations -- /509/    # one size
//! ```
//!
//! Criterion measures and reports each benchmark. At the end a table gives the time per
//! operation of every implementation (the mean over every timed iteration) and the ratio
//! core / post, printed and written to `target/bench/implementations.{md,json,svg}` (the SVG:
//! bars on a log scale, per operation at 509 slots).
//!
//! Every implementation does the same work: state that a benchmark needs (a fresh VM, N slots
//! to delete) is built outside the timed part, every request's return code is checked inside
//! it (the same check for all), and every lookup's answer is checked once before timing.

mod chart;
mod report;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use memslot_harness::implementations::core::CoreImpl;
use memslot_harness::implementations::oracle::Oracle;
use memslot_harness::implementations::port::PortImpl;
use memslot_harness::implementations::tree::TreeImpl;
use memslot_harness::implementations::Implementation;
use memslot_harness::ops::{Region, KVM_MEM_LOG_DIRTY_PAGES, KVM_USER_MEM_SLOTS, PAGE_SIZE};
use memslot_harness::ArchProfile;
use memslot_reference::Port;

/// Sizes every implementation runs at; the last is the x86 user limit.
const SIZES: [usize; 3] = [8, 64, 509];
/// The later kernel's x86 user limit (32767 ids - 3 private): x86-32k's implementations.
const LARGE: usize = 32_764;
/// The lowest slot's first GFN: room below it for the "miss below" lookups.
const BASE_GFN: u64 = 0x10_0000;
const HVA: u64 = 0x7f00_0000_0000;
/// Lookups per timed iteration.
const LOOKUPS: usize = 1024;
/// The implementation the core is measured against.
const BASELINE: &str = "post";
/// The size the SVG chart shows.
const CHART_SIZE: usize = 509;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    CreateAscending,
    CreateDescending,
    CreateRandom,
    DeleteAll,
    MoveAcrossAndBack,
    ToggleDirty,
    NoOpRepeat,
    LookupLruHit,
    LookupSearchHit,
    LookupMissInGap,
    LookupMissBelow,
}

impl Op {
    const ALL: [Op; 11] = [
        Op::CreateAscending,
        Op::CreateDescending,
        Op::CreateRandom,
        Op::DeleteAll,
        Op::MoveAcrossAndBack,
        Op::ToggleDirty,
        Op::NoOpRepeat,
        Op::LookupLruHit,
        Op::LookupSearchHit,
        Op::LookupMissInGap,
        Op::LookupMissBelow,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::CreateAscending => "create N ascending",
            Op::CreateDescending => "create N descending",
            Op::CreateRandom => "create N random",
            Op::DeleteAll => "delete all N",
            Op::MoveAcrossAndBack => "move one across and back",
            Op::ToggleDirty => "toggle dirty on every slot",
            Op::NoOpRepeat => "no-op repeat",
            Op::LookupLruHit => "lookup: LRU hit",
            Op::LookupSearchHit => "lookup: search hit (LRU miss)",
            Op::LookupMissInGap => "lookup: miss in a gap",
            Op::LookupMissBelow => "lookup: miss below lowest",
        }
    }

    fn is_lookup(self) -> bool {
        self >= Op::LookupLruHit
    }

    /// The goal for core / post: no slower on requests, within 5% on lookups.
    fn ratio_goal(self) -> f64 {
        if self.is_lookup() {
            1.05
        } else {
            1.0
        }
    }
}

/// An implementation under test, built fresh for a benchmark of `n` slots.
struct Subject {
    name: &'static str,
    make: fn(usize) -> Box<dyn Implementation>,
    /// The sizes it runs at.
    fits: fn(usize) -> bool,
}

fn x86_2020(n: usize) -> bool {
    n <= usize::from(KVM_USER_MEM_SLOTS)
}

fn any_size(_: usize) -> bool {
    true
}

fn above_2020(n: usize) -> bool {
    !x86_2020(n)
}

/// Every implementation that can hold `n` slots, in table order.
fn subjects(n: usize) -> Vec<Subject> {
    let all = [
        Subject {
            name: "core",
            make: |n| Box::new(CoreImpl::with_arch(arch(n))),
            fits: any_size,
        },
        Subject {
            name: "tree",
            make: |n| Box::new(TreeImpl::with_arch(arch(n))),
            fits: any_size,
        },
        Subject {
            name: "pre",
            make: |_| Box::new(PortImpl::new(Port::Pre)),
            fits: x86_2020,
        },
        Subject {
            name: "post",
            make: |_| Box::new(PortImpl::new(Port::Post)),
            fits: x86_2020,
        },
        Subject {
            name: "pre-fixed",
            make: |_| Box::new(PortImpl::new(Port::PreFixed)),
            fits: x86_2020,
        },
        Subject {
            name: "post-fixed",
            make: |_| Box::new(PortImpl::new(Port::PostFixed)),
            fits: x86_2020,
        },
        Subject {
            name: "post15",
            make: |_| Box::new(PortImpl::new(Port::Post15)),
            fits: x86_2020,
        },
        Subject {
            name: "modern",
            make: |_| Box::new(PortImpl::new(Port::Modern)),
            fits: x86_2020,
        },
        Subject {
            name: "modern-32k",
            make: |_| Box::new(PortImpl::new(Port::Modern32k)),
            fits: above_2020,
        },
        Subject {
            name: "oracle",
            make: |_| Box::new(Oracle::new()),
            fits: x86_2020,
        },
    ];
    all.into_iter()
        .filter(|s| n == usize::MAX || (s.fits)(n))
        .collect()
}

/// Every implementation's name, in table order.
fn names() -> Vec<&'static str> {
    subjects(usize::MAX).iter().map(|s| s.name).collect()
}

/// The modern port at `n` slots, by name: `modern` or `modern-32k`.
fn modern_at(n: usize) -> &'static str {
    if x86_2020(n) {
        "modern"
    } else {
        "modern-32k"
    }
}

/// The profile that holds `n` user slots (`LARGE` is x86-32k's count).
fn arch(n: usize) -> ArchProfile {
    if x86_2020(n) {
        ArchProfile::X86_512
    } else {
        ArchProfile::X86_32k
    }
}

/// Slot `i` (id `i`, address space 0): one page at `BASE_GFN + 2i`.
fn region(i: usize, flags: u32) -> Region {
    let page = 2 * i as u64;
    Region::new(
        0,
        i as u16,
        (BASE_GFN + page) * PAGE_SIZE,
        PAGE_SIZE,
        HVA + page * PAGE_SIZE,
        flags,
    )
}

fn deleted(i: usize) -> Region {
    Region {
        memory_size: 0,
        ..region(i, 0)
    }
}

/// A fixed pseudo-random permutation of `0..n` (xorshift; the same in every run).
fn shuffled(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// A request that must succeed: the same check for every implementation, inside the timing.
fn request(imp: &mut dyn Implementation, r: &Region) {
    let rc = imp.set_user_memory_region(black_box(r));
    assert_eq!(rc, 0, "{}: request {r:?} failed", imp.name());
}

fn filled(subject: &Subject, n: usize) -> Box<dyn Implementation> {
    let mut imp = (subject.make)(n);
    for i in 0..n {
        request(imp.as_mut(), &region(i, 0));
    }
    imp
}

/// (operation, slots, implementation).
type Key = (Op, usize, &'static str);

/// Key -> (time, operations) over every timed iteration, warm-up included.
static RESULTS: Mutex<BTreeMap<Key, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn record(key: Key, time: Duration, ops: u64) {
    let mut results = RESULTS.lock().unwrap();
    let entry = results.entry(key).or_default();
    entry.0 += time;
    entry.1 += ops;
}

/// Times `iters` runs of `routine`, each on a fresh state from `setup` (built and dropped
/// outside the timing); each run performs `ops` operations.
fn batched<T>(
    iters: u64,
    setup: impl Fn() -> T,
    mut routine: impl FnMut(&mut T),
    key: Key,
    ops: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut state = setup();
        let start = Instant::now();
        routine(&mut state);
        total += start.elapsed();
        drop(black_box(state));
    }
    record(key, total, iters * ops);
    total
}

/// Times `iters` runs of `routine` on one state; each run performs `ops` operations.
fn repeated<T: ?Sized>(
    iters: u64,
    state: &mut T,
    mut routine: impl FnMut(&mut T),
    key: Key,
    ops: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        routine(state);
    }
    let total = start.elapsed();
    record(key, total, iters * ops);
    total
}

fn bench_requests(g: &mut BenchmarkGroup<'_, WallTime>, subject: &Subject, n: usize) {
    let name = subject.name;
    let id = |op: Op| format!("{}/{n}/{name}", op.label());
    let nn = n as u64;
    let orders = [
        (Op::CreateAscending, (0..n).collect::<Vec<_>>()),
        (Op::CreateDescending, (0..n).rev().collect()),
        (Op::CreateRandom, shuffled(n)),
    ];
    for (op, order) in &orders {
        g.bench_function(id(*op), |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || (subject.make)(n),
                    |imp| {
                        for &i in order {
                            request(imp.as_mut(), &region(i, 0));
                        }
                    },
                    (*op, n, name),
                    nn,
                )
            })
        });
    }
    g.bench_function(id(Op::DeleteAll), |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || filled(subject, n),
                |imp| {
                    for i in 0..n {
                        request(imp.as_mut(), &deleted(i));
                    }
                },
                (Op::DeleteAll, n, name),
                nn,
            )
        })
    });

    // The remaining requests leave the state as they found it, so they share one VM.
    let mut imp = filled(subject, n);
    let home = region(0, 0);
    let away = Region {
        guest_phys_addr: (BASE_GFN + 2 * nn + 2) * PAGE_SIZE,
        ..home
    };
    g.bench_function(id(Op::MoveAcrossAndBack), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                imp.as_mut(),
                |imp| {
                    request(imp, &away);
                    request(imp, &home);
                },
                (Op::MoveAcrossAndBack, n, name),
                2,
            )
        })
    });
    g.bench_function(id(Op::ToggleDirty), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                imp.as_mut(),
                |imp| {
                    for flags in [KVM_MEM_LOG_DIRTY_PAGES, 0] {
                        for i in 0..n {
                            request(imp, &region(i, flags));
                        }
                    }
                },
                (Op::ToggleDirty, n, name),
                2 * nn,
            )
        })
    });
    let mid = region(n / 2, 0);
    g.bench_function(id(Op::NoOpRepeat), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                imp.as_mut(),
                |imp| request(imp, &mid),
                (Op::NoOpRepeat, n, name),
                1,
            )
        })
    });
    bench_lookups(g, subject, n, imp.as_mut());
}

fn bench_lookups(
    g: &mut BenchmarkGroup<'_, WallTime>,
    subject: &Subject,
    n: usize,
    imp: &mut dyn Implementation,
) {
    let order = shuffled(n);
    let cycle = |gfn_of: &dyn Fn(usize) -> u64| -> Vec<u64> {
        (0..LOOKUPS).map(|k| gfn_of(order[k % n])).collect()
    };
    let hit_gfn = BASE_GFN + 2 * (n as u64 / 2);
    let lookups = [
        (Op::LookupLruHit, vec![hit_gfn; LOOKUPS], true),
        // Consecutive lookups land in different slots (n > 1): each misses the LRU hint.
        (
            Op::LookupSearchHit,
            cycle(&|i| BASE_GFN + 2 * i as u64),
            true,
        ),
        (
            Op::LookupMissInGap,
            cycle(&|i| BASE_GFN + 2 * i as u64 + 1),
            false,
        ),
        (Op::LookupMissBelow, vec![BASE_GFN / 2; LOOKUPS], false),
    ];
    for (op, gfns, hits) in &lookups {
        for &gfn in gfns {
            let found = imp.search(0, gfn);
            assert_eq!(found.is_some(), *hits, "{}: lookup {gfn:#x}", subject.name);
        }
        // Every kind starts from the same hint: the middle slot.
        assert!(imp.search(0, hit_gfn).is_some());
        g.bench_function(format!("{}/{n}/{}", op.label(), subject.name), |b| {
            b.iter_custom(|iters| {
                repeated(
                    iters,
                    imp,
                    |imp| {
                        for &gfn in gfns {
                            black_box(imp.search(0, black_box(gfn)));
                        }
                    },
                    (*op, n, subject.name),
                    LOOKUPS as u64,
                )
            })
        });
    }
}

fn benches(c: &mut Criterion) {
    for n in SIZES.into_iter().chain([LARGE]) {
        let mut g = c.benchmark_group("implementations");
        // Whole create/delete sequences are long iterations: flat sampling, few samples.
        g.sampling_mode(SamplingMode::Flat);
        if n > 509 {
            // The array's create and delete are O(n) each: a few runs of O(n^2), not hundreds.
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(1))
                .measurement_time(Duration::from_millis(500));
        } else {
            g.sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
        }
        for subject in subjects(n) {
            bench_requests(&mut g, &subject, n);
        }
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    report::report();
}
