//! The array backend (`Memslots`) against the tree backend (`TreeMemslots`) at 8, 64, 509 and
//! 32,764 slots: requests through `Vm` (set up N slots ascending, descending and in random
//! order, delete all, move one slot across the layout and back, delete and re-create one
//! slot, toggle dirty logging on every slot, a no-op repeat) and lookups (last-used hit, a
//! search that misses the cache and hits, a miss in a gap, a miss below the lowest slot).
//! The shapes of the kernel's memslot_perf_test are the set-up, the move and the
//! delete/re-create.
//!
//! ```sh
//! taskset -c 1 cargo bench -p memslot-core --bench backends            # everything
//! taskset -c 1 cargo bench -p memslot-core --bench backends -- /509/    # one size
//! ```
//!
//! Criterion measures and reports each benchmark; at the end a table gives the time per
//! operation of both backends (the mean over every timed iteration) and their ratio.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use memslot_core::{
    ArchLimits, MemslotSet, Memslots, TreeMemslots, UserMemoryRegion, Vm, KVM_MEM_LOG_DIRTY_PAGES,
    PAGE_SIZE,
};

const SIZES: [usize; 4] = [8, 64, 509, 32_764];
/// The lowest slot's first GFN: room below it for the "miss below" lookups.
const BASE_GFN: u64 = 0x10_0000;
const HVA: u64 = 0x7f00_0000_0000;

fn limits(n: usize) -> ArchLimits {
    if n <= 509 {
        ArchLimits::X86_64
    } else {
        // The later x86 limit: 32764 user slots (KVM_USER_MEM_SLOTS = 32767 - 3 private).
        ArchLimits::custom(n as u16, 3, 2)
    }
}

/// Slot `i` (id `i`): one page at `BASE_GFN + 2i`, so a one-page gap lies above each slot.
fn region(i: usize, flags: u32) -> UserMemoryRegion {
    UserMemoryRegion {
        slot: i as u32,
        flags,
        guest_phys_addr: (BASE_GFN + 2 * i as u64) * PAGE_SIZE,
        memory_size: PAGE_SIZE,
        userspace_addr: HVA + 2 * i as u64 * PAGE_SIZE,
    }
}

/// A fixed pseudo-random permutation of `0..n`.
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

fn full<S: MemslotSet>(n: usize) -> Vm<S> {
    let mut vm = Vm::<S>::with_backend(limits(n));
    for i in 0..n {
        vm.set_user_memory_region(&region(i, 0)).unwrap();
    }
    vm
}

/// (operation, slots, backend).
type Key = (usize, usize, &'static str);

/// Key -> (time, operations) over every timed iteration.
static RESULTS: Mutex<BTreeMap<Key, (Duration, u64)>> = Mutex::new(BTreeMap::new());

const OPS: [&str; 12] = [
    "create N ascending",
    "create N descending",
    "create N random",
    "delete all N",
    "move one across and back",
    "delete + re-create one",
    "toggle dirty on every slot",
    "no-op repeat",
    "lookup: last-used hit",
    "lookup: search hit",
    "lookup: miss in a gap",
    "lookup: miss below lowest",
];

fn record(op: usize, n: usize, backend: &'static str, time: Duration, ops: u64) {
    let mut results = RESULTS.lock().unwrap();
    let e = results.entry((op, n, backend)).or_default();
    e.0 += time;
    e.1 += ops;
}

/// Times `iters` runs of `routine` on a fresh state from `setup` each, `ops` operations each.
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
    record(key.0, key.1, key.2, total, iters * ops);
    total
}

/// Times `iters` runs of `routine` on one state.
fn repeated<T>(
    iters: u64,
    state: &mut T,
    mut routine: impl FnMut(&mut T, u64),
    key: Key,
    ops: u64,
) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        routine(state, i);
    }
    let total = start.elapsed();
    record(key.0, key.1, key.2, total, iters * ops);
    total
}

fn bench_backend<S: MemslotSet>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    name: &'static str,
) {
    let nn = n as u64;
    let key = |op: usize| (op, n, name);
    let orders = [
        (0..n).collect::<Vec<_>>(),
        (0..n).rev().collect(),
        shuffled(n),
    ];
    for (op, order) in orders.iter().enumerate() {
        g.bench_function(format!("{}/{n}/{name}", OPS[op]), |b| {
            b.iter_custom(|iters| {
                batched(
                    iters,
                    || Vm::<S>::with_backend(limits(n)),
                    |vm| {
                        for &i in order {
                            vm.set_user_memory_region(&region(i, 0)).unwrap();
                        }
                    },
                    key(op),
                    nn,
                )
            })
        });
    }
    let base: Vm<S> = full(n);
    g.bench_function(format!("{}/{n}/{name}", OPS[3]), |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || base.clone(),
                |vm| {
                    for i in 0..n {
                        let mut r = region(i, 0);
                        r.memory_size = 0;
                        vm.set_user_memory_region(&r).unwrap();
                    }
                },
                key(3),
                nn,
            )
        })
    });
    // The lowest slot to above the highest and back.
    let mut vm = base.clone();
    let (home, away) = (region(0, 0), {
        let mut r = region(0, 0);
        r.guest_phys_addr = (BASE_GFN + 2 * nn + 2) * PAGE_SIZE;
        r
    });
    g.bench_function(format!("{}/{n}/{name}", OPS[4]), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                &mut vm,
                |vm, _| {
                    vm.set_user_memory_region(&away).unwrap();
                    vm.set_user_memory_region(&home).unwrap();
                },
                key(4),
                2,
            )
        })
    });
    let mid = region(n / 2, 0);
    let gone = UserMemoryRegion {
        memory_size: 0,
        ..mid
    };
    g.bench_function(format!("{}/{n}/{name}", OPS[5]), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                &mut vm,
                |vm, _| {
                    vm.set_user_memory_region(&gone).unwrap();
                    vm.set_user_memory_region(&mid).unwrap();
                },
                key(5),
                2,
            )
        })
    });
    g.bench_function(format!("{}/{n}/{name}", OPS[6]), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                &mut vm,
                |vm, it| {
                    let flags = if it % 2 == 0 {
                        KVM_MEM_LOG_DIRTY_PAGES
                    } else {
                        0
                    };
                    for i in 0..n {
                        vm.set_user_memory_region(&region(i, flags)).unwrap();
                    }
                },
                key(6),
                nn,
            )
        })
    });
    let mut vm = base.clone();
    g.bench_function(format!("{}/{n}/{name}", OPS[7]), |b| {
        b.iter_custom(|iters| {
            repeated(
                iters,
                &mut vm,
                |vm, _| {
                    assert_eq!(vm.set_user_memory_region(black_box(&mid)), Ok(None));
                },
                key(7),
                1,
            )
        })
    });

    // Lookups, 1024 per iteration.
    let slots = base.memslots(0).unwrap();
    let order = shuffled(n);
    let cycle =
        |f: &dyn Fn(usize) -> u64| -> Vec<u64> { (0..1024).map(|k| f(order[k % n])).collect() };
    let hit_gfn = BASE_GFN + 2 * (n as u64 / 2);
    let lookups: [Vec<u64>; 4] = [
        vec![hit_gfn; 1024],
        // Consecutive lookups in different slots (for n > 1): the cache misses.
        cycle(&|i| BASE_GFN + 2 * i as u64),
        cycle(&|i| BASE_GFN + 2 * i as u64 + 1),
        vec![BASE_GFN / 2; 1024],
    ];
    for (k, gfns) in lookups.iter().enumerate() {
        let op = 8 + k;
        slots.search(hit_gfn);
        let mut unit = ();
        g.bench_function(format!("{}/{n}/{name}", OPS[op]), |b| {
            b.iter_custom(|iters| {
                repeated(
                    iters,
                    &mut unit,
                    |_, _| {
                        for &gfn in gfns {
                            black_box(slots.search(black_box(gfn)));
                        }
                    },
                    key(op),
                    1024,
                )
            })
        });
    }
}

fn benches(c: &mut Criterion) {
    for n in SIZES {
        let mut g = c.benchmark_group("backends");
        if n > 509 {
            // The array's set-up is O(n^2) at this size: a few runs, not hundreds.
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(1))
                .measurement_time(Duration::from_millis(500));
        } else {
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_millis(500));
        }
        bench_backend::<Memslots>(&mut g, n, "array");
        bench_backend::<TreeMemslots>(&mut g, n, "tree");
        g.finish();
    }
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Time per operation of both backends and array/tree (above 1: the tree is faster), then
/// the whole set-up of N slots.
fn print_table() {
    let results = RESULTS.lock().unwrap();
    let per_op = |op, n, backend| {
        results
            .get(&(op, n, backend))
            .filter(|r| r.1 > 0)
            .map(|(t, ops)| t.as_nanos() as f64 / *ops as f64)
    };
    println!();
    println!("| operation | slots | array | tree | array / tree |");
    println!("|---|---:|---:|---:|---:|");
    for (op, name) in OPS.iter().enumerate() {
        for n in SIZES {
            if let (Some(a), Some(t)) = (per_op(op, n, "array"), per_op(op, n, "tree")) {
                println!(
                    "| {name} | {n} | {} | {} | {:.2} |",
                    time(a),
                    time(t),
                    a / t
                );
            }
        }
    }
    println!();
    println!("| set-up of all N slots (ascending) | array | tree | array / tree |");
    println!("|---|---:|---:|---:|");
    for n in SIZES {
        if let (Some(a), Some(t)) = (per_op(0, n, "array"), per_op(0, n, "tree")) {
            let n_f = n as f64;
            println!(
                "| {n} | {} | {} | {:.1} |",
                time(a * n_f),
                time(t * n_f),
                a / t
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    print_table();
}
