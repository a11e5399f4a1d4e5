//! The commands that run for a budget: `stress`, `seed-corpus`, `throughput`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use memslot_harness::corpus;
use memslot_harness::stress;
use memslot_harness::targets::Target;

use super::lockstep::{parse_duration, parse_number, LockstepArgs};
use crate::progress::Progress;

/// Generate and check programs without libFuzzer until the budget is spent or the
/// implementations diverge.
///
/// The failing scenario is written to --out. --zoo runs a zoo bug's state (--fixed: its fixed
/// state); --arch x86-32k generates and runs at today's x86 limits; --generator random draws
/// the eval baseline's programs.
#[derive(Args, Debug)]
pub struct Stress {
    /// The first program seed (default: from the clock)
    #[arg(long, value_name = "S", value_parser = parse_number)]
    seed: Option<u64>,
    /// Run for this long (30s, 5m, 1h)
    #[arg(long, value_name = "T", value_parser = parse_duration)]
    time: Option<Duration>,
    /// Run this many programs
    #[arg(long, value_name = "N", value_parser = parse_number)]
    iters: Option<u64>,
    /// Where the failing scenario goes (default: target/memslot-diff/)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    lockstep: LockstepArgs,
    /// End with one line of JSON: detected, seconds, programs, ops, seed
    #[arg(long)]
    json: bool,
}

pub fn stress(a: Stress, out: &mut dyn Write) -> Result<i32, String> {
    let (lockstep, generator) = a.lockstep.lockstep().map_err(|e| format!("stress: {e}"))?;
    let (time, iters) = (a.time, a.iters);
    if time.is_none() && iters.is_none() {
        return Err("stress: give a budget: --time T (30s, 5m) or --iters N".to_string());
    }
    let seed = match a.seed {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let out_dir = a
        .out
        .unwrap_or_else(|| corpus::root().join("target").join("memslot-diff"));
    // The bar counts programs against --iters, else seconds against --time.
    let (total, unit) = match (iters, time) {
        (Some(n), _) => (n, "programs"),
        (None, Some(t)) => (t.as_secs().max(1), "s"),
        (None, None) => (0, ""),
    };
    let bar = Progress::new(total, unit);
    let start = std::time::Instant::now();
    let outcome = stress::stress_with_progress(
        &stress::Options {
            seed,
            time,
            iters,
            out_dir,
            lockstep,
            generator,
        },
        out,
        &mut |so_far, line| {
            let position = match iters {
                Some(_) => so_far.iterations,
                None => start.elapsed().as_secs(),
            };
            bar.update(position, line.split("] ").nth(1).unwrap_or(line));
            !bar.is_bar()
        },
    );
    drop(bar);
    if a.json {
        let line = serde_json::json!({
            "detected": outcome.failure.is_some(),
            "seconds": outcome.elapsed.as_secs_f64(),
            "programs": outcome.iterations,
            "ops": outcome.ops,
            "seed": seed,
        });
        let _ = writeln!(out, "{line}");
    }
    Ok(if outcome.failure.is_some() { 1 } else { 0 })
}

/// Convert corpus/<target>/{seeds,regressions} to libFuzzer inputs in fuzz/corpus/<target>/
/// (what `cargo fuzz run <target>` starts from).
#[derive(Args, Debug)]
pub struct SeedCorpus {
    /// The project corpus (default: corpus/)
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Where the libFuzzer inputs go (default: fuzz/corpus/)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn seed_corpus(a: SeedCorpus, out: &mut dyn Write) -> Result<i32, String> {
    let corpus_dir = a.corpus.unwrap_or_else(|| corpus::root().join("corpus"));
    let out_dir = a
        .out
        .unwrap_or_else(|| corpus::root().join("fuzz").join("corpus"));
    let mut written = 0;
    for target in corpus::FUZZ_TARGETS {
        let inputs = corpus::fuzz_inputs(&corpus_dir, target)?;
        for skipped in &inputs.skipped {
            let _ = writeln!(out, "seed-corpus: skipped {skipped}");
        }
        let dest = out_dir.join(target);
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        for (name, bytes) in &inputs.inputs {
            let name = dest.join(name);
            std::fs::write(&name, bytes).map_err(|e| format!("{}: {e}", name.display()))?;
            written += 1;
        }
    }
    let _ = writeln!(
        out,
        "seed-corpus: wrote {written} inputs under {}",
        out_dir.display()
    );
    Ok(0)
}

/// The harness's speed in this build: executions per second of each fuzz target over its
/// fixed input set (its seeds and regressions, and 256 inputs generated from seed 1), and the
/// share of time spent in generation, in each implementation and in comparison.
#[derive(Args, Debug)]
pub struct Throughput {
    /// Comma-separated fuzz targets (default: all)
    #[arg(long, value_name = "a,b,...")]
    targets: Option<String>,
    /// Time per input set
    #[arg(long, value_name = "T", value_parser = parse_duration, default_value = "3s")]
    time: Duration,
    /// Write the fixed sets to DIR/<target>/ and measure nothing (ci/throughput runs the
    /// cargo-fuzz build on them)
    #[arg(long, value_name = "DIR")]
    write_inputs: Option<PathBuf>,
    /// Also write the figures as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn throughput(a: Throughput, out: &mut dyn Write) -> Result<i32, String> {
    use crate::throughput::{executions_per_second, fixed_inputs};
    use memslot_harness::profile::Profile;
    let targets: Vec<&str> = match &a.targets {
        None => corpus::FUZZ_TARGETS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|name| {
                corpus::FUZZ_TARGETS
                    .into_iter()
                    .find(|t| *t == name)
                    .ok_or_else(|| {
                        format!(
                            "throughput: unknown target '{name}' (known: {})",
                            corpus::FUZZ_TARGETS.join(", ")
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(dir) = &a.write_inputs {
        for target in &targets {
            let dest = dir.join(target);
            std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            let inputs = fixed_inputs(target)?;
            for (name, bytes) in &inputs {
                let file = dest.join(name);
                std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            let _ = writeln!(out, "{}: {} inputs", dest.display(), inputs.len());
        }
        return Ok(0);
    }
    let budget = a.time;
    let _ = writeln!(
        out,
        "{:<13} {:<10} {:>6} {:>10} {:>12}",
        "target", "set", "inputs", "execs/s", "ops/s"
    );
    let mut results = Vec::new();
    let bar = Progress::new(2 * targets.len() as u64, "input sets");
    let mut measured = 0;
    for target in &targets {
        let inputs = fixed_inputs(target)?;
        let split = inputs.len() - crate::throughput::GENERATED;
        let mut profile = Profile::default();
        for (set, part) in [("seeds", &inputs[..split]), ("generated", &inputs[split..])] {
            if part.is_empty() {
                continue;
            }
            bar.update(measured, &format!("{target} {set}"));
            let execs = executions_per_second(target, part, budget);
            measured += 1;
            // Operations per input, from the profiled pass (scenario targets only).
            let mut ops_per_input = None;
            if let Some(t) = Target::from_name(target) {
                let mut part_profile = Profile::default();
                for (_, bytes) in part {
                    part_profile.record(t, bytes);
                }
                ops_per_input =
                    Some(part_profile.operations as f64 / part_profile.executions as f64);
                profile.add(&part_profile);
            }
            let row = format!(
                "{:<13} {:<10} {:>6} {:>10.0} {:>12}",
                target,
                set,
                part.len(),
                execs,
                ops_per_input.map_or("-".to_string(), |o| format!("{:.0}", o * execs))
            );
            bar.print(out, &row);
            results.push(serde_json::json!({
                "target": target, "set": set, "inputs": part.len(),
                "executions_per_second": execs,
                "operations_per_second": ops_per_input.map(|o| o * execs),
            }));
        }
        if profile.executions > 0 {
            let shares: Vec<String> = profile
                .shares()
                .iter()
                .map(|(part, share)| format!("{part} {:.1}%", share * 100.0))
                .collect();
            bar.print(
                out,
                &format!("  {target}: time per part: {}", shares.join(", ")),
            );
            results.push(serde_json::json!({ "target": target, "profile": profile }));
        }
    }
    if let Some(file) = &a.json {
        let text = serde_json::to_string_pretty(&results).unwrap_or_default();
        std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(0)
}
