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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
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

/// Nanoseconds per operation, for every (operation, slots, implementation) that ran.
fn per_op() -> BTreeMap<Key, f64> {
    let results = RESULTS.lock().unwrap();
    results
        .iter()
        .filter(|(_, r)| r.1 > 0)
        .map(|(&key, (time, ops))| (key, time.as_nanos() as f64 / *ops as f64))
        .collect()
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

fn ratio(results: &BTreeMap<Key, f64>, op: Op, n: usize) -> Option<f64> {
    Some(results.get(&(op, n, "core"))? / results.get(&(op, n, BASELINE))?)
}

/// The modern port's time over the Rust tree's.
fn modern_ratio(results: &BTreeMap<Key, f64>, op: Op, n: usize) -> Option<f64> {
    Some(results.get(&(op, n, modern_at(n)))? / results.get(&(op, n, "tree"))?)
}

/// The machine, as the README quotes it: CPUs, model, compiler.
fn machine() -> String {
    // /proc/cpuinfo counts the machine's CPUs; available_parallelism only those taskset left.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let pinned = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim);
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    format!("{model}, {cpus} CPUs, run on {pinned}; {rustc}")
}

/// The markdown table: time per operation of each implementation, core / post and whether it
/// meets the goal (at most 1.0 on requests, 1.05 on lookups).
fn markdown(results: &BTreeMap<Key, f64>) -> String {
    let mut md = String::new();
    let names = names();
    let _ = writeln!(
        md,
        "| operation | slots | {} | core / {BASELINE} | modern / tree |",
        names.join(" | ")
    );
    let _ = writeln!(md, "|---|---:|{}---:|---:|", "---:|".repeat(names.len()));
    for op in Op::ALL {
        for n in SIZES.into_iter().chain([LARGE]) {
            if !names
                .iter()
                .any(|name| results.contains_key(&(op, n, name)))
            {
                continue;
            }
            let cells: Vec<String> = names
                .iter()
                .map(|name| results.get(&(op, n, name)).map_or("–".into(), |&t| time(t)))
                .collect();
            let ratio = ratio(results, op, n).map_or("–".into(), |r| {
                let mark = if r <= op.ratio_goal() { "" } else { " ✗" };
                format!("{r:.2}{mark}")
            });
            let modern = modern_ratio(results, op, n).map_or("–".into(), |r| format!("{r:.2}"));
            let _ = writeln!(
                md,
                "| {} | {n} | {} | {ratio} | {modern} |",
                op.label(),
                cells.join(" | ")
            );
        }
    }
    md
}

fn json(results: &BTreeMap<Key, f64>, machine: &str) -> String {
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|(&(op, n, name), &ns)| {
            serde_json::json!({
                "operation": op.label(),
                "slots": n,
                "implementation": name,
                "ns_per_op": ns,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "results": rows }))
        .expect("plain values serialize")
}

/// Grouped horizontal bars, one group per operation at `n` slots, time per operation on a
/// log scale; the group title carries core / post.
fn svg(results: &BTreeMap<Key, f64>, n: usize, machine: &str) -> String {
    const COLORS: [&str; 10] = [
        "#d62728", "#ff7f0e", "#7f7f7f", "#bcbd22", "#1f77b4", "#9467bd", "#17becf", "#8c564b",
        "#e377c2", "#2ca02c",
    ];
    // The implementations that ran at `n` (modern-32k only runs above 509).
    let names: Vec<&str> = names()
        .into_iter()
        .filter(|name| {
            Op::ALL
                .iter()
                .any(|&op| results.contains_key(&(op, n, name)))
        })
        .collect();
    let (left, plot_width, bar, title_row) = (200.0, 560.0, 12.0, 20.0);
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|&op| {
            names
                .iter()
                .any(|name| results.contains_key(&(op, n, name)))
        })
        .collect();
    let slowest = ops
        .iter()
        .flat_map(|&op| {
            names
                .iter()
                .filter_map(move |name| results.get(&(op, n, name)))
        })
        .fold(1.0, |hi: f64, &v| hi.max(v));
    // The axis starts at 1 ns (a dynamic call and a compare already take that); a faster bar
    // is drawn one pixel long.
    let (lo_exp, hi_exp) = (0.0, slowest.log10().ceil().max(1.0));
    let x = |ns: f64| left + (ns.log10() - lo_exp) / (hi_exp - lo_exp) * plot_width;
    let group_height = title_row + bar * names.len() as f64 + 10.0;
    let top = 70.0;
    let height = top + group_height * ops.len() as f64 + 30.0;
    let width = left + plot_width + 120.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="18" font-size="14" font-weight="bold">Time per operation at {n} slots (log scale; lower is faster)</text>"#
    );
    let machine = machine
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let _ = writeln!(s, r##"<text x="10" y="34" fill="#555">{machine}</text>"##);
    for (k, name) in names.iter().enumerate() {
        let lx = 10.0 + 90.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="44" width="10" height="10" fill="{}"/><text x="{}" y="53">{name}</text>"#,
            COLORS[k],
            lx + 14.0
        );
    }
    let bottom = height - 30.0;
    for e in lo_exp as i32..=hi_exp as i32 {
        let tx = x(10f64.powi(e));
        let _ = writeln!(
            s,
            r##"<line x1="{tx}" y1="{top}" x2="{tx}" y2="{bottom}" stroke="#ddd"/><text x="{tx}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            bottom + 14.0,
            decade(e)
        );
    }
    for (g, &op) in ops.iter().enumerate() {
        let gy = top + group_height * g as f64;
        let title = match ratio(results, op, n) {
            Some(r) => format!("{} (core / {BASELINE}: {r:.2})", op.label()),
            None => op.label().to_string(),
        };
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{title}</text>"#,
            gy + 14.0
        );
        for (k, name) in names.iter().enumerate() {
            let Some(&ns) = results.get(&(op, n, name)) else {
                continue;
            };
            let by = gy + title_row + bar * k as f64;
            let end = x(ns).max(left + 1.0);
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{by}" width="{}" height="{}" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                left - 6.0,
                by + 9.5,
                end - left,
                bar - 2.0,
                COLORS[k],
                end + 4.0,
                by + 9.5,
                time(ns)
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// An axis label for 10^e nanoseconds: `1 ns`, `10 µs`, ...
fn decade(e: i32) -> String {
    let unit = ["ns", "µs", "ms", "s"][(e / 3).clamp(0, 3) as usize];
    format!("{} {unit}", 10u64.pow((e - 3 * (e / 3).clamp(0, 3)) as u32))
}

/// `target/bench/` (or `$CARGO_TARGET_DIR/bench/`).
fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("bench")
}

fn report() {
    let results = per_op();
    if results.is_empty() {
        return;
    }
    let machine = machine();
    let md = markdown(&results);
    println!("\nTime per operation (mean over every timed iteration); {machine}\n\n{md}");
    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("implementations.md"),
            format!("Measured on {machine}.\n\n{md}"),
        )?;
        std::fs::write(dir.join("implementations.json"), json(&results, &machine))?;
        if results.keys().any(|k| k.1 == CHART_SIZE) {
            std::fs::write(
                dir.join("implementations.svg"),
                svg(&results, CHART_SIZE, &machine),
            )?;
        }
        Ok(())
    });
    match written {
        Ok(()) => println!("written: {}/implementations.{{md,json,svg}}", dir.display()),
        Err(e) => eprintln!("cannot write {}: {e}", dir.display()),
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    report();
}
