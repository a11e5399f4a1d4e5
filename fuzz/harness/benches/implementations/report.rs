//! The benchmark's own report: time per operation of every implementation, the ratios, as
//! Markdown, JSON and a chart under `target/bench/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::{chart, modern_at, names, Key, Op, BASELINE, CHART_SIZE, LARGE, RESULTS, SIZES};

/// Nanoseconds per operation, for every (operation, slots, implementation) that ran.
pub fn per_op() -> BTreeMap<Key, f64> {
    let results = RESULTS.lock().unwrap();
    results
        .iter()
        .filter(|(_, r)| r.1 > 0)
        .map(|(&key, (time, ops))| (key, time.as_nanos() as f64 / *ops as f64))
        .collect()
}

pub fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

pub fn ratio(results: &BTreeMap<Key, f64>, op: Op, n: usize) -> Option<f64> {
    Some(results.get(&(op, n, "core"))? / results.get(&(op, n, BASELINE))?)
}

/// The modern port's time over the Rust tree's.
pub fn modern_ratio(results: &BTreeMap<Key, f64>, op: Op, n: usize) -> Option<f64> {
    Some(results.get(&(op, n, modern_at(n)))? / results.get(&(op, n, "tree"))?)
}

/// The machine, as the README quotes it: CPUs, model, compiler.
pub fn machine() -> String {
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
pub fn markdown(results: &BTreeMap<Key, f64>) -> String {
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

pub fn json(results: &BTreeMap<Key, f64>, machine: &str) -> String {
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

/// `target/bench/` (or `$CARGO_TARGET_DIR/bench/`).
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("bench")
}

pub fn report() {
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
                chart::bars(&results, CHART_SIZE, &machine).map_err(std::io::Error::other)?,
            )?;
        }
        Ok(())
    });
    match written {
        Ok(()) => println!("written: {}/implementations.{{md,json,svg}}", dir.display()),
        Err(e) => eprintln!("cannot write {}: {e}", dir.display()),
    }
}
