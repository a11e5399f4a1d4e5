//! `memslot-diff eval`: how fast each engine finds each zoo bug, with the layout-steered
//! generator and with the random baseline (issue 5's measurement).
//!
//! ```text
//! memslot-diff eval [--bugs a,b,...] [--engines stress,libfuzzer,libfuzzer-asan] [--trials N]
//!                   [--cap T] [--baseline-trials N] [--baseline-cap T] [--jobs N] [--out DIR]
//!                   [--fuzz-bin-dir DIR] [--asan-bin-dir DIR]
//! ```
//!
//! Every trial is its own process, started from nothing (no corpus, no state shared with other
//! trials) with a seed of its own, so the trials are independent samples:
//!
//! * `stress`: this executable, `stress --zoo BUG --seed S --time CAP --json --generator G`;
//!   executions are the programs it ran.
//! * `libfuzzer`: the bug's fuzz target in the shipped build (`cargo fuzz build -s none`: no
//!   AddressSanitizer, the C ports' out-of-bounds accesses caught by the shim's guard pages),
//!   with `MEMSLOT_DIFF_ZOO=BUG` and `MEMSLOT_DIFF_GENERATOR=G`, an empty corpus directory,
//!   `-seed=S -max_total_time=CAP -len_control=0` (inputs at full length from the start: a bug
//!   takes several operations); a `crash-*` artifact is a detection; executions are
//!   libFuzzer's `stat::number_of_executed_units` (else its last `#N` status line).
//! * `libfuzzer-asan`: the same with the AddressSanitizer build (`cargo fuzz build -s address
//!   --target-dir target/fuzz-asan`, what OSS-Fuzz runs), side by side with the shipped one.
//!
//! Each libFuzzer engine checks that its binaries are the build it names (linked with
//! AddressSanitizer or not), so that a figure never comes from the other build.
//!
//! Time to detection is the wall clock of the trial's process, for both engines, so it
//! includes the process's start-up (for libFuzzer: ASan's and the fuzzer's initialisation).
//! A trial that did not detect the bug within its cap is censored at the cap.
//!
//! Output (under `--out`, default `target/memslot-diff/eval`): `results.json` (every trial and
//! the per-group summary), `table.md` (one row per bug × engine, steered and baseline side by
//! side) and `survival.svg` (the fraction of trials still undetected over time); each trial's
//! logs and artifacts are kept under `trials/BUG/ENGINE/GENERATOR/seed-S/`.

mod engines;
mod schedule;
pub(crate) mod stats;
mod table;
mod trials;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use memslot_harness::corpus;
use memslot_harness::zoo::{self, Generator, ZooBug};

use crate::fuzz_build::FuzzBuild;
pub(crate) use engines::libfuzzer_executions;
pub use stats::{quantile, summarize, survival, Group, Spread};
pub use table::{format_seconds, table_markdown};
pub use trials::Trial;

/// Measure how fast each engine finds each zoo bug: N independent trials per bug and engine
/// from an empty corpus, then the same with the random baseline generator.
///
/// Writes results.json, table.md and survival.svg to --out and prints the table. The
/// libfuzzer engines run the binaries of `cargo +nightly fuzz build` (or those in
/// --fuzz-bin-dir and --asan-bin-dir).
#[derive(clap::Args, Debug, Default)]
pub struct EvalArgs {
    /// Comma-separated zoo bugs (default: all)
    #[arg(long, value_name = "a,b,...")]
    bugs: Option<String>,
    /// Comma-separated engines: stress, libfuzzer, libfuzzer-asan (default: stress,libfuzzer)
    #[arg(long, value_name = "a,b,...")]
    engines: Option<String>,
    /// Trials per bug and engine (default: 10)
    #[arg(long, value_name = "N")]
    trials: Option<String>,
    /// Time limit per trial (default: 60s)
    #[arg(long, value_name = "T")]
    cap: Option<String>,
    /// Trials of the random baseline generator; 0 skips it (default: --trials)
    #[arg(long, value_name = "N")]
    baseline_trials: Option<String>,
    /// Time limit per baseline trial (default: --cap)
    #[arg(long, value_name = "T")]
    baseline_cap: Option<String>,
    /// Trials run at once (default: 2)
    #[arg(long, value_name = "N")]
    jobs: Option<String>,
    /// Where results go (default: target/memslot-diff/eval)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The shipped build's fuzz binaries (default: where `cargo fuzz build -s none` puts them)
    #[arg(long, value_name = "DIR")]
    fuzz_bin_dir: Option<PathBuf>,
    /// The AddressSanitizer build's fuzz binaries (default: target/fuzz-asan's)
    #[arg(long, value_name = "DIR")]
    asan_bin_dir: Option<PathBuf>,
}

/// The engines that can be measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// `memslot-diff stress`: the generator alone, no coverage feedback.
    Stress,
    /// The `cargo fuzz` targets, shipped build: the same decoding driven by libFuzzer's
    /// mutations.
    LibFuzzer,
    /// The `cargo fuzz` targets built with AddressSanitizer.
    LibFuzzerAsan,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Stress, Engine::LibFuzzer, Engine::LibFuzzerAsan];
    /// What `eval` runs without `--engines`.
    pub const DEFAULT: [Engine; 2] = [Engine::Stress, Engine::LibFuzzer];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Stress => "stress",
            Engine::LibFuzzer => "libfuzzer",
            Engine::LibFuzzerAsan => "libfuzzer-asan",
        }
    }

    /// The fuzz build a libFuzzer engine runs (`None`: not a libFuzzer engine).
    fn fuzz_build(self) -> Option<FuzzBuild> {
        match self {
            Engine::Stress => None,
            Engine::LibFuzzer => Some(FuzzBuild::Shipped),
            Engine::LibFuzzerAsan => Some(FuzzBuild::Asan),
        }
    }

    fn parse(text: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == text)
    }
}

/// `steered` or `random`: the values `--generator` and `MEMSLOT_DIFF_GENERATOR` take.
fn generator_name(generator: Generator) -> &'static str {
    match generator {
        Generator::Steered => "steered",
        Generator::Random => "random",
    }
}

/// What `eval` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub bugs: Vec<&'static ZooBug>,
    pub engines: Vec<Engine>,
    pub trials: u64,
    pub cap: Duration,
    /// 0 skips the baseline.
    pub baseline_trials: u64,
    pub baseline_cap: Duration,
    /// Trials run at once.
    pub jobs: u64,
    pub out_dir: PathBuf,
    /// Where the shipped build's fuzz binaries are; `None`: where `cargo fuzz build -s none`
    /// puts them.
    pub fuzz_bin_dir: Option<PathBuf>,
    /// Where the AddressSanitizer build's are; `None`: `target/fuzz-asan`'s.
    pub asan_bin_dir: Option<PathBuf>,
}

impl Options {
    /// Checks the options of `eval` and fills in the defaults.
    pub fn from_args(args: EvalArgs) -> Result<Options, String> {
        let values: BTreeMap<&str, &String> = [
            ("bugs", &args.bugs),
            ("engines", &args.engines),
            ("trials", &args.trials),
            ("cap", &args.cap),
            ("baseline-trials", &args.baseline_trials),
            ("baseline-cap", &args.baseline_cap),
            ("jobs", &args.jobs),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name, v)))
        .collect();
        let bugs = match values.get("bugs") {
            None => zoo::BUGS.iter().collect(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    zoo::bug(name.trim()).ok_or_else(|| {
                        format!(
                            "eval: unknown zoo bug '{name}' (known: {})",
                            zoo::bug_names()
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let engines = match values.get("engines") {
            None => Engine::DEFAULT.to_vec(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    Engine::parse(name.trim()).ok_or_else(|| {
                        let known: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
                        format!(
                            "eval: unknown engine '{name}' (known: {})",
                            known.join(", ")
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let number = |name: &str, default: u64| -> Result<u64, String> {
            values.get(name).map_or(Ok(default), |text| {
                text.parse()
                    .map_err(|_| format!("eval: bad number '{text}' for --{name}"))
            })
        };
        let duration = |name: &str, default: Duration| -> Result<Duration, String> {
            values
                .get(name)
                .map_or(Ok(default), |text| parse_duration(name, text))
        };
        let trials = number("trials", 10)?;
        let cap = duration("cap", Duration::from_secs(60))?;
        let options = Options {
            bugs: dedup(bugs, |bug| bug.name),
            engines: dedup(engines, |&engine| engine),
            trials,
            cap,
            baseline_trials: number("baseline-trials", trials)?,
            baseline_cap: duration("baseline-cap", cap)?,
            jobs: number("jobs", 2)?,
            out_dir: args
                .out
                .unwrap_or_else(|| corpus::root().join("target/memslot-diff/eval")),
            fuzz_bin_dir: args.fuzz_bin_dir,
            asan_bin_dir: args.asan_bin_dir,
        };
        if options.trials == 0 {
            return Err("eval: --trials must be at least 1".to_string());
        }
        if options.jobs == 0 {
            return Err("eval: --jobs must be at least 1".to_string());
        }
        Ok(options)
    }
}

/// Keeps the first of each repeated entry (`--bugs a,a` measures `a` once).
fn dedup<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.iter().any(|k| key(k) == key(&item)) {
            kept.push(item);
        }
    }
    kept
}

/// `60`, `60s`, `5m`, `1h`, `500ms` ([`crate::duration::parse_duration`]); must be positive (a
/// zero cap measures nothing).
fn parse_duration(option: &str, text: &str) -> Result<Duration, String> {
    match crate::duration::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!(
            "eval: bad duration '{text}' for --{option}: must be positive"
        )),
        Err(e) => Err(format!("eval: {e} for --{option}")),
    }
}

/// Runs `eval` with `args`; progress and the table go to `out`.
pub fn command(args: EvalArgs, out: &mut dyn Write) -> Result<i32, String> {
    let options = Options::from_args(args)?;
    let binaries = trials::find_fuzz_binaries(&options)?;
    let stress_exe =
        std::env::current_exe().map_err(|e| format!("eval: cannot find this executable: {e}"))?;
    let specs = trials::plan(&options);
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| format!("eval: {}: {e}", options.out_dir.display()))?;
    // An earlier run's results must not pass for this one's if this one breaks off.
    for stale in ["results.json", "table.md", "survival.svg"] {
        let _ = std::fs::remove_file(options.out_dir.join(stale));
    }
    let _ = writeln!(
        out,
        "eval: {} trials ({} bugs × {} engines; {} steered trials, cap {}; {} baseline trials, \
         cap {}), {} at a time, into {}",
        specs.len(),
        options.bugs.len(),
        options.engines.len(),
        options.trials,
        format_seconds(options.cap.as_secs_f64()),
        options.baseline_trials,
        format_seconds(options.baseline_cap.as_secs_f64()),
        options.jobs,
        options.out_dir.display()
    );
    let _ = out.flush();

    let launcher = engines::Launcher {
        stress_exe,
        binaries,
        dict_dir: corpus::root().join("fuzz/dict"),
    };
    let (trials, errors) = schedule::run_all(&specs, &launcher, options.jobs, out);

    if !errors.is_empty() {
        // A partial table would read as a measurement; the trials' logs stay for diagnosis.
        return Err(format!(
            "eval: an engine failed, so no results were written:\n  {}",
            errors.join("\n  ")
        ));
    }
    let summary = summarize(&trials);
    write_results(&options, &trials, &summary)?;
    let _ = writeln!(out, "\n{}", table_markdown(&options, &summary));
    let _ = writeln!(
        out,
        "eval: wrote {}, table.md and survival.svg",
        options.out_dir.join("results.json").display()
    );
    Ok(0)
}
/// Writes `results.json`, `table.md` and `survival.svg`.
fn write_results(options: &Options, trials: &[Trial], groups: &[Group]) -> Result<(), String> {
    let results = serde_json::json!({
        "config": {
            "bugs": options.bugs.iter().map(|b| b.name).collect::<Vec<_>>(),
            "engines": options.engines.iter().map(|e| e.name()).collect::<Vec<_>>(),
            "trials": options.trials,
            "cap_seconds": options.cap.as_secs_f64(),
            "baseline_trials": options.baseline_trials,
            "baseline_cap_seconds": options.baseline_cap.as_secs_f64(),
            "time": "wall clock of each trial's process, start-up included",
            "executions": "stress: programs run; libfuzzer: stat::number_of_executed_units",
        },
        "trials": trials,
        "summary": groups,
    });
    let write = |name: &str, text: String| {
        let path = options.out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("eval: {}: {e}", path.display()))
    };
    write(
        "results.json",
        serde_json::to_string_pretty(&results).unwrap_or_default() + "\n",
    )?;
    write("table.md", table_markdown(options, groups))?;
    write("survival.svg", survival_svg(groups)?)
}

/// The survival plot: fraction of trials still undetected against time, one line per group,
/// steered solid, baseline dashed.
pub fn survival_svg(groups: &[Group]) -> Result<String, String> {
    let lines: Vec<crate::chart::Line> = groups
        .iter()
        .map(|group| {
            let steered = group.generator == "steered";
            crate::chart::Line {
                key: format!("{} {}", group.bug, group.engine),
                dashed: !steered,
                label: format!(
                    "{} · {} · {} ({}/{} found)",
                    group.bug,
                    group.engine,
                    if steered { "steered" } else { "baseline" },
                    group.detected,
                    group.trials
                ),
                survival: group.survival.clone(),
                cap_seconds: group.cap_seconds,
            }
        })
        .collect();
    crate::chart::survival(
        &lines,
        "memslot-diff eval: zoo bugs still undetected over time",
        "trials still undetected",
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The options `memslot-diff eval ARGS` runs with.
    pub(crate) fn parse(args: &[String]) -> Options {
        use clap::Parser;
        #[derive(Parser)]
        struct Eval {
            #[command(flatten)]
            args: EvalArgs,
        }
        let args = Eval::try_parse_from(std::iter::once("eval".to_string()).chain(args.to_vec()))
            .unwrap()
            .args;
        Options::from_args(args).unwrap()
    }

    #[test]
    fn usage_errors_exit_2() {
        let run = |args: &str| {
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = crate::cli::run_with(&args, &mut out, &mut err);
            (code, String::from_utf8(err).unwrap())
        };
        for (args, expected) in [
            ("eval --bugs nope", "unknown zoo bug 'nope'"),
            ("eval --engines afl", "unknown engine 'afl'"),
            ("eval --trials 0", "--trials must be at least 1"),
            ("eval --trials many", "bad number 'many' for --trials"),
            ("eval --cap 0s", "bad duration '0s' for --cap"),
            (
                "eval --cap 5x",
                "bad duration '5x' (e.g. 30s, 5m, 1h) for --cap",
            ),
            (
                "eval --cap 5 --cap 6",
                "'--cap <T>' cannot be used multiple times",
            ),
            ("eval --jobs", "a value is required for '--jobs <N>'"),
            ("eval --frobnicate 1", "unexpected argument '--frobnicate'"),
            ("eval stale-lru", "unexpected argument 'stale-lru'"),
            (
                "eval --engines libfuzzer --fuzz-bin-dir /nonexistent --bugs stale-lru",
                "cargo +nightly fuzz build -s none differential",
            ),
            (
                "eval --engines libfuzzer-asan --asan-bin-dir /nonexistent --bugs stale-lru",
                "cargo +nightly fuzz build -s address --target-dir target/fuzz-asan differential",
            ),
        ] {
            let (code, err) = run(args);
            assert_eq!(code, 2, "{args}: {err}");
            assert!(err.contains(expected), "{args}: {err}");
        }
    }
}
