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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use memslot_harness::corpus;
use memslot_harness::zoo::{self, Generator, ZooBug};

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

/// One trial to run.
#[derive(Clone, Debug)]
struct TrialSpec {
    bug: &'static ZooBug,
    engine: Engine,
    generator: Generator,
    seed: u64,
    cap: Duration,
    dir: PathBuf,
}

/// One finished trial, as `results.json` records it.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub bug: &'static str,
    pub engine: &'static str,
    /// `steered` or `random` (the baseline).
    pub generator: &'static str,
    pub seed: u64,
    pub detected: bool,
    /// Wall clock of the trial's process.
    pub seconds: f64,
    /// Programs run (stress) or units executed (libFuzzer); `None` if libFuzzer printed none.
    pub executions: Option<u64>,
    /// The trial's budget: an undetected trial is censored here.
    pub cap_seconds: f64,
    /// Its logs and artifacts.
    pub dir: String,
}

/// The trials of every bug × engine × generator, steered first, then the baseline. Seeds are
/// `1000 * (trial + 1) + bug index`: distinct per trial, reproducible, never 0 (libFuzzer's
/// "pick a seed for me").
fn plan(options: &Options) -> Vec<TrialSpec> {
    let mut specs = Vec::new();
    let passes = [
        (Generator::Steered, options.trials, options.cap),
        (
            Generator::Random,
            options.baseline_trials,
            options.baseline_cap,
        ),
    ];
    for (generator, trials, cap) in passes {
        for bug in &options.bugs {
            let bug_index = zoo::BUGS
                .iter()
                .position(|b| b.name == bug.name)
                .unwrap_or(0);
            for &engine in &options.engines {
                for trial in 0..trials {
                    let seed = 1000 * (trial + 1) + bug_index as u64;
                    let dir = options
                        .out_dir
                        .join("trials")
                        .join(bug.name)
                        .join(engine.name())
                        .join(generator_name(generator))
                        .join(format!("seed-{seed}"));
                    specs.push(TrialSpec {
                        bug,
                        engine,
                        generator,
                        seed,
                        cap,
                        dir,
                    });
                }
            }
        }
    }
    specs
}

/// The two fuzz builds a libFuzzer engine can run (`ci/lib.sh`, `select_fuzz_build`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FuzzBuild {
    /// `cargo fuzz build -s none`: no AddressSanitizer.
    Shipped,
    /// `cargo fuzz build -s address --target-dir target/fuzz-asan`.
    Asan,
}

impl FuzzBuild {
    fn describe(self) -> &'static str {
        match self {
            FuzzBuild::Shipped => "the shipped build (no AddressSanitizer)",
            FuzzBuild::Asan => "the AddressSanitizer build",
        }
    }

    fn build_command(self, targets: &str) -> String {
        match self {
            FuzzBuild::Shipped => format!("cargo +nightly fuzz build -s none {targets}"),
            FuzzBuild::Asan => format!(
                "cargo +nightly fuzz build -s address --target-dir target/fuzz-asan {targets}"
            ),
        }
    }

    fn option(self) -> &'static str {
        match self {
            FuzzBuild::Shipped => "--fuzz-bin-dir",
            FuzzBuild::Asan => "--asan-bin-dir",
        }
    }

    /// Where cargo-fuzz leaves this build's binaries: the workspace's target directory (or
    /// `$CARGO_TARGET_DIR`), else the fuzz crate's own (when built outside the workspace).
    fn default_dirs(self) -> Vec<PathBuf> {
        let triple_release = Path::new("x86_64-unknown-linux-gnu").join("release");
        let mut dirs = Vec::new();
        match self {
            FuzzBuild::Shipped => {
                if let Some(target_dir) = std::env::var_os("CARGO_TARGET_DIR") {
                    dirs.push(PathBuf::from(target_dir).join(&triple_release));
                }
                dirs.push(corpus::root().join("target").join(&triple_release));
                dirs.push(corpus::root().join("fuzz/target").join(&triple_release));
            }
            FuzzBuild::Asan => {
                dirs.push(
                    corpus::root()
                        .join("target/fuzz-asan")
                        .join(&triple_release),
                );
            }
        }
        dirs
    }

    /// Whether `binary` is this build: linked with AddressSanitizer's runtime or not.
    fn matches(self, binary: &Path) -> Result<bool, String> {
        let bytes = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let needle = b"__asan_init\0";
        let asan = bytes.windows(needle.len()).any(|w| w == needle);
        Ok(asan == (self == FuzzBuild::Asan))
    }
}

/// The fuzz binary of every target the selected bugs need, per libFuzzer engine, or an error
/// naming the build command.
fn find_fuzz_binaries(
    options: &Options,
) -> Result<BTreeMap<(Engine, &'static str), PathBuf>, String> {
    let mut targets: Vec<&'static str> = options.bugs.iter().map(|b| b.target).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut found = BTreeMap::new();
    for &engine in &options.engines {
        let Some(build) = engine.fuzz_build() else {
            continue;
        };
        let chosen = match build {
            FuzzBuild::Shipped => &options.fuzz_bin_dir,
            FuzzBuild::Asan => &options.asan_bin_dir,
        };
        let candidates = match chosen {
            Some(dir) => vec![dir.clone()],
            None => build.default_dirs(),
        };
        let mut missing = Vec::new();
        for target in &targets {
            match candidates
                .iter()
                .map(|dir| dir.join(target))
                .find(|path| path.is_file())
            {
                Some(path) => {
                    if !build.matches(&path)? {
                        return Err(format!(
                            "eval: {} is not {} that engine {} measures. Rebuild it from the \
                             repository root with\n    {}\nor point {} at that build.",
                            path.display(),
                            build.describe(),
                            engine.name(),
                            build.build_command(target),
                            build.option(),
                        ));
                    }
                    found.insert((engine, *target), path);
                }
                None => missing.push(*target),
            }
        }
        if !missing.is_empty() {
            let searched: Vec<String> =
                candidates.iter().map(|d| d.display().to_string()).collect();
            return Err(format!(
                "eval: engine {} needs the fuzz binaries {} of {} (looked in {}).\n\
                 Build them from the repository root with\n    {}\n\
                 (or RUSTC_BOOTSTRAP=1 cargo fuzz build ...; `cargo install cargo-fuzz` and a \
                 clang are needed), point {} at them, or measure only --engines stress.",
                engine.name(),
                missing.join(", "),
                build.describe(),
                searched.join(", "),
                build.build_command(&missing.join(" ")),
                build.option(),
            ));
        }
    }
    Ok(found)
}

/// Runs `eval` with `args`; progress and the table go to `out`.
pub fn command(args: EvalArgs, out: &mut dyn Write) -> Result<i32, String> {
    let options = Options::from_args(args)?;
    let binaries = find_fuzz_binaries(&options)?;
    let stress_exe =
        std::env::current_exe().map_err(|e| format!("eval: cannot find this executable: {e}"))?;
    let specs = plan(&options);
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

    let launcher = Launcher {
        stress_exe,
        binaries,
        dict_dir: corpus::root().join("fuzz/dict"),
    };
    let (trials, errors) = run_all(&specs, &launcher, options.jobs, out);

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

/// How trial processes are started.
struct Launcher {
    stress_exe: PathBuf,
    /// Fuzz binary per libFuzzer engine and target.
    binaries: BTreeMap<(Engine, &'static str), PathBuf>,
    dict_dir: PathBuf,
}

/// Runs `specs`, `jobs` at a time, printing a line per finished trial. Returns the finished
/// trials in plan order and the errors of broken trials (after the first error no new trial
/// starts: the measurement is void anyway).
fn run_all(
    specs: &[TrialSpec],
    launcher: &Launcher,
    jobs: u64,
    out: &mut dyn Write,
) -> (Vec<Trial>, Vec<String>) {
    let next = AtomicUsize::new(0);
    let broken = AtomicBool::new(false);
    let mut finished: Vec<Option<Trial>> = vec![None; specs.len()];
    let mut errors = Vec::new();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        for _ in 0..jobs.min(specs.len() as u64) {
            let sender = sender.clone();
            let (next, broken) = (&next, &broken);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= specs.len() || broken.load(Ordering::SeqCst) {
                    break;
                }
                let result = run_trial(&specs[index], launcher);
                if result.is_err() {
                    broken.store(true, Ordering::SeqCst);
                }
                if sender.send((index, result)).is_err() {
                    break;
                }
            });
        }
        // Only the workers hold senders now: the loop ends when the last one is done.
        drop(sender);
        let mut done = 0;
        for (index, result) in receiver {
            done += 1;
            match result {
                Ok(trial) => {
                    let _ = writeln!(out, "[{done:>4}/{}] {}", specs.len(), progress_line(&trial));
                    finished[index] = Some(trial);
                }
                Err(message) => {
                    let _ = writeln!(out, "[{done:>4}/{}] ERROR {message}", specs.len());
                    errors.push(message);
                }
            }
            let _ = out.flush();
        }
    });
    (finished.into_iter().flatten().collect(), errors)
}

fn progress_line(trial: &Trial) -> String {
    let executions = trial.executions.map_or_else(
        || "executions unknown".to_string(),
        |n| format!("{n} execution{}", if n == 1 { "" } else { "s" }),
    );
    let verdict = if trial.detected {
        format!("detected after {}", format_seconds(trial.seconds))
    } else {
        format!("not detected in {}", format_seconds(trial.seconds))
    };
    format!(
        "{} {} {} seed {}: {verdict} ({executions})",
        trial.bug, trial.engine, trial.generator, trial.seed
    )
}

/// Runs one trial in a fresh directory.
fn run_trial(spec: &TrialSpec, launcher: &Launcher) -> Result<Trial, String> {
    let what = format!(
        "{} {} {} seed {}",
        spec.bug.name,
        spec.engine.name(),
        generator_name(spec.generator),
        spec.seed
    );
    // A leftover corpus or artifact from an earlier run would make the trial neither
    // independent nor from an empty corpus.
    if spec.dir.exists() {
        std::fs::remove_dir_all(&spec.dir)
            .map_err(|e| format!("{what}: cannot clear {}: {e}", spec.dir.display()))?;
    }
    std::fs::create_dir_all(&spec.dir)
        .map_err(|e| format!("{what}: cannot create {}: {e}", spec.dir.display()))?;
    let (detected, executions, seconds) = match spec.engine {
        Engine::Stress => run_stress(spec, launcher, &what)?,
        Engine::LibFuzzer | Engine::LibFuzzerAsan => run_libfuzzer(spec, launcher, &what)?,
    };
    Ok(Trial {
        bug: spec.bug.name,
        engine: spec.engine.name(),
        generator: generator_name(spec.generator),
        seed: spec.seed,
        detected,
        seconds,
        executions,
        cap_seconds: spec.cap.as_secs_f64(),
        dir: spec.dir.display().to_string(),
    })
}

/// A file for a child's output (a file, not a pipe: nobody has to drain it while it runs).
fn log_file(spec: &TrialSpec, name: &str, what: &str) -> Result<(std::fs::File, PathBuf), String> {
    let path = spec.dir.join(name);
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("{what}: cannot create {}: {e}", path.display()))?;
    Ok((file, path))
}

/// Waits for `child`, returning its exit status and wall clock since `start`. Kills it if it
/// overruns its cap by far (an engine that ignores its budget is broken).
fn wait_timed(
    mut child: Child,
    start: Instant,
    cap: Duration,
    what: &str,
) -> Result<(std::process::ExitStatus, f64), String> {
    let deadline = cap * 2 + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((status, start.elapsed().as_secs_f64())),
            Ok(None) => {}
            Err(e) => return Err(format!("{what}: waiting for the process failed: {e}")),
        }
        let elapsed = start.elapsed();
        if elapsed > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what}: still running {} after its cap of {}; killed",
                format_seconds(elapsed.as_secs_f64()),
                format_seconds(cap.as_secs_f64())
            ));
        }
        // Polling keeps the measured time within ~1% of the truth (at least 1 ms) without
        // burning a core on the wait.
        std::thread::sleep(
            (elapsed / 100).clamp(Duration::from_millis(1), Duration::from_millis(20)),
        );
    }
}

fn run_stress(
    spec: &TrialSpec,
    launcher: &Launcher,
    what: &str,
) -> Result<(bool, Option<u64>, f64), String> {
    let (stdout, stdout_path) = log_file(spec, "stdout.log", what)?;
    let (stderr, stderr_path) = log_file(spec, "stderr.log", what)?;
    let start = Instant::now();
    let child = Command::new(&launcher.stress_exe)
        .arg("stress")
        .args(["--zoo", spec.bug.name])
        .args(["--generator", generator_name(spec.generator)])
        .args(["--seed", &spec.seed.to_string()])
        .args(["--time", &format!("{}ms", spec.cap.as_millis().max(1))])
        .arg("--json")
        .arg("--out")
        .arg(&spec.dir)
        // The command line chooses the bug; a stray environment must not.
        .env_remove("MEMSLOT_DIFF_ZOO")
        .env_remove("MEMSLOT_DIFF_GENERATOR")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| {
            format!(
                "{what}: cannot start {}: {e}",
                launcher.stress_exe.display()
            )
        })?;
    let (status, seconds) = wait_timed(child, start, spec.cap, what)?;
    let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(last).map_err(|_| {
        format!(
            "{what}: stress ended with {status} and printed no JSON result (see {} and {})",
            stdout_path.display(),
            stderr_path.display()
        )
    })?;
    let detected = json["detected"].as_bool().ok_or_else(|| {
        format!(
            "{what}: stress's JSON has no 'detected' (see {})",
            stdout_path.display()
        )
    })?;
    // Exit 1 means detected, 0 not: anything else (or a mismatch) is not a measurement.
    if status.code() != Some(i32::from(detected)) {
        return Err(format!(
            "{what}: stress ended with {status} but reported detected={detected} (see {})",
            stderr_path.display()
        ));
    }
    Ok((detected, json["programs"].as_u64(), seconds))
}

fn run_libfuzzer(
    spec: &TrialSpec,
    launcher: &Launcher,
    what: &str,
) -> Result<(bool, Option<u64>, f64), String> {
    let binary = launcher
        .binaries
        .get(&(spec.engine, spec.bug.target))
        .ok_or_else(|| format!("{what}: no fuzz binary for target {}", spec.bug.target))?;
    let corpus_dir = spec.dir.join("corpus");
    std::fs::create_dir_all(&corpus_dir)
        .map_err(|e| format!("{what}: cannot create {}: {e}", corpus_dir.display()))?;
    let (log, log_path) = log_file(spec, "fuzz.log", what)?;
    let log_for_stdout = log
        .try_clone()
        .map_err(|e| format!("{what}: {}: {e}", log_path.display()))?;
    // libFuzzer's budget is whole seconds; round up so it gets at least the cap.
    let cap_seconds = spec.cap.as_secs() + u64::from(spec.cap.subsec_nanos() > 0);
    let mut command = Command::new(binary);
    command
        .arg(&corpus_dir)
        .arg(format!("-seed={}", spec.seed))
        .arg(format!("-max_total_time={cap_seconds}"))
        .arg("-print_final_stats=1")
        .arg("-rss_limit_mb=4096")
        // Inputs are operation sequences and a bug needs several steps: libFuzzer's default
        // length control keeps inputs to a few operations for the first minutes.
        .arg("-len_control=0")
        .arg(format!("-artifact_prefix={}/", spec.dir.display()));
    let dict = launcher.dict_dir.join(format!("{}.dict", spec.bug.target));
    if dict.is_file() {
        command.arg(format!("-dict={}", dict.display()));
    }
    let start = Instant::now();
    let child = command
        .env("MEMSLOT_DIFF_ZOO", spec.bug.name)
        .env("MEMSLOT_DIFF_GENERATOR", generator_name(spec.generator))
        .stdin(Stdio::null())
        .stdout(log_for_stdout)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{what}: cannot start {}: {e}", binary.display()))?;
    let (status, seconds) = wait_timed(child, start, spec.cap, what)?;
    let text = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let executions = libfuzzer_executions(&text);
    let artifacts: Vec<String> = std::fs::read_dir(&spec.dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    ["crash-", "leak-", "oom-", "timeout-", "slow-unit-"]
                        .iter()
                        .any(|prefix| name.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    let detected = artifacts.iter().any(|name| name.starts_with("crash-"));
    // A leak, an out-of-memory or a hang is not the bug, and a silent exit is not a
    // measurement: either way the harness needs looking at.
    if !detected && (!status.success() || executions.is_none()) {
        let why = match artifacts.first() {
            Some(artifact) => format!("wrote {artifact} but no crash"),
            None if executions.is_none() => "printed no libFuzzer status".to_string(),
            None => "wrote no artifact".to_string(),
        };
        return Err(format!(
            "{what}: the fuzz target ended with {status} and {why} (see {})",
            log_path.display()
        ));
    }
    Ok((detected, executions, seconds))
}

/// Units executed per libFuzzer's log: the final stats if printed, else the last `#N` status
/// line (a lower bound: status lines come at powers of two and on new coverage).
pub(crate) fn libfuzzer_executions(log: &str) -> Option<u64> {
    let mut last_status = None;
    let mut final_stat = None;
    for line in log.lines() {
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            final_stat = value.trim().parse().ok().or(final_stat);
        } else if let Some(rest) = line.strip_prefix('#') {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                last_status = Some(n);
            }
        }
    }
    final_stat.or(last_status)
}

// ---------------------------------------------------------------------------------------
// Statistics.

/// The `q`-quantile of sorted values, interpolating linearly between the closest ranks (R's
/// type 7, numpy's default): the median of an even count is the mean of the middle two.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (below, above) = (rank.floor() as usize, rank.ceil() as usize);
    let weight = rank - below as f64;
    Some(sorted[below] * (1.0 - weight) + sorted[above] * weight)
}

/// Five-number summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            min: *sorted.first()?,
            q1: quantile(&sorted, 0.25)?,
            median: quantile(&sorted, 0.5)?,
            q3: quantile(&sorted, 0.75)?,
            max: *sorted.last()?,
        })
    }
}

/// The fraction of `trials` still undetected over time, as steps `(t, fraction after t)` in
/// increasing `t`; it starts at 1 before the first step. Every undetected trial is censored at
/// its cap, which is never before a detection, so this is the Kaplan–Meier estimate.
pub fn survival(detection_seconds: &[f64], trials: usize) -> Vec<(f64, f64)> {
    let mut sorted = detection_seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (found, &t) in sorted.iter().enumerate() {
        let remaining = trials.saturating_sub(found + 1) as f64 / trials.max(1) as f64;
        match steps.last_mut() {
            // Detections at the same instant are one step.
            Some(last) if last.0 == t => last.1 = remaining,
            _ => steps.push((t, remaining)),
        }
    }
    steps
}

/// The trials of one bug × engine × generator, summarized.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub bug: &'static str,
    pub engine: &'static str,
    pub generator: &'static str,
    pub trials: usize,
    pub detected: usize,
    pub cap_seconds: f64,
    /// Time to detection over the detected trials.
    pub seconds: Option<Spread>,
    /// Median executions to detection over the detected trials.
    pub median_executions: Option<f64>,
    /// The survival curve (see [`survival`]).
    pub survival: Vec<(f64, f64)>,
}

/// Groups `trials` by bug × engine × generator, in the order they first appear.
pub fn summarize(trials: &[Trial]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut members: Vec<Vec<&Trial>> = Vec::new();
    for trial in trials {
        let key = (trial.bug, trial.engine, trial.generator);
        match groups
            .iter()
            .position(|g| (g.bug, g.engine, g.generator) == key)
        {
            Some(i) => members[i].push(trial),
            None => {
                groups.push(Group {
                    bug: trial.bug,
                    engine: trial.engine,
                    generator: trial.generator,
                    trials: 0,
                    detected: 0,
                    cap_seconds: 0.0,
                    seconds: None,
                    median_executions: None,
                    survival: Vec::new(),
                });
                members.push(vec![trial]);
            }
        }
    }
    for (group, members) in groups.iter_mut().zip(&members) {
        let detected: Vec<&&Trial> = members.iter().filter(|t| t.detected).collect();
        let seconds: Vec<f64> = detected.iter().map(|t| t.seconds).collect();
        let mut executions: Vec<f64> = detected
            .iter()
            .filter_map(|t| t.executions.map(|n| n as f64))
            .collect();
        executions.sort_by(f64::total_cmp);
        group.trials = members.len();
        group.detected = detected.len();
        group.cap_seconds = members.iter().map(|t| t.cap_seconds).fold(0.0, f64::max);
        group.seconds = Spread::of(&seconds);
        group.median_executions = quantile(&executions, 0.5);
        group.survival = survival(&seconds, members.len());
    }
    groups
}

// ---------------------------------------------------------------------------------------
// Output.

/// `850 µs`, `12.3 ms`, `4.56 s`, `123 s`: three significant digits.
pub fn format_seconds(seconds: f64) -> String {
    let three_digits = |value: f64| {
        let decimals = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        let text = format!("{value:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    if seconds < 1e-3 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{} ms", three_digits(seconds * 1e3))
    } else {
        format!("{} s", three_digits(seconds))
    }
}

fn format_count(count: f64) -> String {
    if count.fract() == 0.0 {
        format!("{count:.0}")
    } else {
        format!("{count:.1}")
    }
}

/// The Markdown table: one row per bug × engine, steered and baseline side by side.
pub fn table_markdown(options: &Options, groups: &[Group]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Steered: {} trials per bug × engine, cap {}; baseline (random generator): {}.",
        options.trials,
        format_seconds(options.cap.as_secs_f64()),
        if options.baseline_trials == 0 {
            "skipped".to_string()
        } else {
            format!(
                "{} trials, cap {}",
                options.baseline_trials,
                format_seconds(options.baseline_cap.as_secs_f64())
            )
        }
    );
    let _ = writeln!(
        table,
        "Time: wall clock of each trial's process (start-up included), median [min, q1–q3, \
         max] over the detected trials; executions: programs (stress) or libFuzzer units, \
         median over the detected trials.\n"
    );
    let _ = writeln!(
        table,
        "| bug | target | engine | found | time to detection | executions | baseline found | \
         baseline time | baseline executions |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<(&str, &str)> = groups.iter().map(|g| (g.bug, g.engine)).collect();
    rows.dedup();
    let mut seen = Vec::new();
    for (bug, engine) in rows {
        if seen.contains(&(bug, engine)) {
            continue;
        }
        seen.push((bug, engine));
        let target = zoo::bug(bug).map_or("?", |b| b.target);
        let cells = |generator: &str| match groups
            .iter()
            .find(|g| (g.bug, g.engine, g.generator) == (bug, engine, generator))
        {
            None => ["—".to_string(), "—".to_string(), "—".to_string()],
            Some(g) => [
                format!("{}/{}", g.detected, g.trials),
                g.seconds.map_or("—".to_string(), |s| {
                    if s.min == s.max {
                        return format_seconds(s.median);
                    }
                    format!(
                        "{} [{}, {}–{}, {}]",
                        format_seconds(s.median),
                        format_seconds(s.min),
                        format_seconds(s.q1),
                        format_seconds(s.q3),
                        format_seconds(s.max)
                    )
                }),
                g.median_executions.map_or("—".to_string(), format_count),
            ],
        };
        let [found, time, executions] = cells("steered");
        let [base_found, base_time, base_executions] = cells("random");
        let _ = writeln!(
            table,
            "| {bug} | {target} | {engine} | {found} | {time} | {executions} | {base_found} | \
             {base_time} | {base_executions} |"
        );
    }
    table
}

/// Series colours, one per bug × engine (steered and baseline share it).
const PALETTE: [&str; 12] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#393b79", "#637939",
];

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The survival plot: fraction of trials still undetected against time (log scale, 1 ms to
/// the longest cap), one line per group, steered solid, baseline dashed, with a legend.
pub fn survival_svg(groups: &[Group]) -> String {
    let label = |group: &Group| {
        format!(
            "{} · {} · {} ({}/{} found)",
            group.bug,
            group.engine,
            if group.generator == "steered" {
                "steered"
            } else {
                "baseline"
            },
            group.detected,
            group.trials
        )
    };
    survival_svg_with(
        groups,
        "memslot-diff eval: zoo bugs still undetected over time",
        "trials still undetected",
        &label,
    )
}

/// [`survival_svg`] with its own title, y axis and legend labels (`memslot-diff mutants`
/// draws its mutants still alive over time with it).
pub fn survival_svg_with(
    groups: &[Group],
    title: &str,
    y_label: &str,
    label: &dyn Fn(&Group) -> String,
) -> String {
    const T_MIN: f64 = 1e-3;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 40.0;
    const PLOT_WIDTH: f64 = 560.0;
    const PLOT_HEIGHT: f64 = 400.0;
    const LEGEND_X: f64 = LEFT + PLOT_WIDTH + 30.0;
    const LEGEND_ROW: f64 = 18.0;
    let t_max = groups
        .iter()
        .map(|g| g.cap_seconds)
        .fold(1.0, f64::max)
        .max(T_MIN * 10.0);
    let (log_min, log_max) = (T_MIN.log10(), t_max.log10());
    let x = |t: f64| {
        LEFT + (t.clamp(T_MIN, t_max).log10() - log_min) / (log_max - log_min) * PLOT_WIDTH
    };
    let y = |fraction: f64| TOP + (1.0 - fraction) * PLOT_HEIGHT;
    let width = LEGEND_X + 380.0;
    let height = (TOP + PLOT_HEIGHT + 60.0).max(TOP + 20.0 + groups.len() as f64 * LEGEND_ROW);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width:.0}" height="{height:.0}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        LEFT + PLOT_WIDTH / 2.0,
        xml_escape(title)
    );

    // Grid and ticks: every decade, and the fractions in quarters.
    let mut decade = log_min.ceil() as i32;
    while f64::from(decade) <= log_max + 1e-9 {
        let t = 10f64.powi(decade);
        let label = match decade {
            -3 => "1 ms".to_string(),
            -2 => "10 ms".to_string(),
            -1 => "100 ms".to_string(),
            d => format!("{} s", 10u64.pow(d as u32)),
        };
        let px = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP:.1}" x2="{px:.1}" y2="{:.1}" stroke="#dddddd"/>"##,
            TOP + PLOT_HEIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            TOP + PLOT_HEIGHT + 16.0
        );
        decade += 1;
    }
    for quarter in 0..=4 {
        let fraction = f64::from(quarter) / 4.0;
        let py = y(fraction);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#dddddd"/>"##,
            LEFT + PLOT_WIDTH
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"#,
            LEFT - 6.0,
            py + 4.0,
            quarter * 25
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT:.1}" y="{TOP:.1}" width="{PLOT_WIDTH:.1}" height="{PLOT_HEIGHT:.1}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (wall clock of the trial process, log scale)</text>"#,
        LEFT + PLOT_WIDTH / 2.0,
        TOP + PLOT_HEIGHT + 40.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        TOP + PLOT_HEIGHT / 2.0,
        TOP + PLOT_HEIGHT / 2.0,
        xml_escape(y_label)
    );

    // One colour per bug × engine, in order of appearance; the legend lists each pair's
    // steered line right above its baseline.
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut series: Vec<(usize, &Group)> = Vec::new();
    for group in groups {
        let pair = (group.bug, group.engine);
        let colour_index = pairs.iter().position(|&p| p == pair).unwrap_or_else(|| {
            pairs.push(pair);
            pairs.len() - 1
        });
        series.push((colour_index, group));
    }
    series.sort_by_key(|&(colour_index, group)| (colour_index, group.generator != "steered"));
    for (row, &(colour_index, group)) in series.iter().enumerate() {
        let colour = PALETTE[colour_index % PALETTE.len()];
        let dash = if group.generator == "steered" {
            ""
        } else {
            r#" stroke-dasharray="6 4""#
        };
        // A step function: flat until each detection, then down.
        let mut path = format!("M{:.1},{:.1}", x(T_MIN), y(1.0));
        for &(t, fraction) in &group.survival {
            let _ = write!(path, " H{:.1} V{:.1}", x(t), y(fraction));
        }
        let _ = write!(path, " H{:.1}", x(group.cap_seconds));
        let label = xml_escape(&label(group));
        let _ = writeln!(
            svg,
            r#"<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}><title>{label}</title></path>"#
        );
        let ly = TOP + 10.0 + row as f64 * LEGEND_ROW;
        let _ = writeln!(
            svg,
            r#"<line x1="{LEGEND_X:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            LEGEND_X + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            LEGEND_X + 34.0,
            ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
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
    write("survival.svg", survival_svg(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options `memslot-diff eval ARGS` runs with.
    fn parse(args: &[String]) -> Options {
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
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.25), Some(7.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), Some(1.75));
        let spread = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            spread,
            Spread {
                min: 1.0,
                q1: 2.0,
                median: 3.0,
                q3: 4.0,
                max: 5.0
            }
        );
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn survival_steps_down_per_detection() {
        assert_eq!(survival(&[], 3), vec![]);
        assert_eq!(
            survival(&[2.0, 0.5], 4),
            vec![(0.5, 0.75), (2.0, 0.5)],
            "two of four found: half survive the cap"
        );
        assert_eq!(
            survival(&[1.0, 1.0, 3.0], 3),
            vec![(1.0, 1.0 / 3.0), (3.0, 0.0)],
            "ties are one step"
        );
    }

    fn trial(
        bug: &'static str,
        engine: &'static str,
        generator: &'static str,
        seconds: Option<f64>,
    ) -> Trial {
        Trial {
            bug,
            engine,
            generator,
            seed: 1000,
            detected: seconds.is_some(),
            seconds: seconds.unwrap_or(10.0),
            executions: Some(seconds.map_or(100, |s| (s * 100.0) as u64)),
            cap_seconds: 10.0,
            dir: String::new(),
        }
    }

    fn fixed_results() -> Vec<Trial> {
        vec![
            trial("stale-lru", "stress", "steered", Some(0.01)),
            trial("stale-lru", "stress", "steered", Some(0.03)),
            trial("stale-lru", "stress", "random", None),
            trial("stale-lru", "stress", "random", Some(5.0)),
            trial("below-lowest", "libfuzzer", "steered", Some(2.0)),
            trial("below-lowest", "libfuzzer", "random", None),
        ]
    }

    #[test]
    fn summary_groups_by_bug_engine_generator() {
        let groups = summarize(&fixed_results());
        assert_eq!(groups.len(), 4);
        let steered = &groups[0];
        assert_eq!(
            (steered.bug, steered.engine, steered.generator),
            ("stale-lru", "stress", "steered")
        );
        assert_eq!((steered.detected, steered.trials), (2, 2));
        assert_eq!(steered.seconds.unwrap().median, 0.02);
        assert_eq!(steered.median_executions, Some(2.0));
        let baseline = &groups[1];
        assert_eq!((baseline.detected, baseline.trials), (1, 2));
        assert_eq!(baseline.survival, vec![(5.0, 0.5)]);
        assert_eq!(groups[3].seconds, None);
    }

    #[test]
    fn svg_has_a_path_and_legend_entry_per_series() {
        let groups = summarize(&fixed_results());
        let svg = survival_svg(&groups);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<path class=\"series\"").count(), groups.len());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<path").count(), svg.matches("</path>").count());
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2 * 2,
            "baseline: line and legend"
        );
        for legend in [
            "stale-lru · stress · steered (2/2 found)",
            "stale-lru · stress · baseline (1/2 found)",
            "below-lowest · libfuzzer · steered (1/1 found)",
            "below-lowest · libfuzzer · baseline (0/1 found)",
            "1 ms",
            "10 s",
            "trials still undetected",
        ] {
            assert!(svg.contains(legend), "missing {legend:?}");
        }
        // Every coordinate is a number: nothing of the plot went NaN or infinite.
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn table_puts_baseline_beside_steered() {
        let options = parse(&["--trials".to_string(), "2".to_string()]);
        let table = table_markdown(&options, &summarize(&fixed_results()));
        let row = table
            .lines()
            .find(|l| l.starts_with("| stale-lru "))
            .expect("stale-lru row");
        assert!(
            row.contains("| 2/2 | 20 ms [10 ms, 15 ms–25 ms, 30 ms] | 2 | 1/2 | 5 s | 500 |"),
            "{row}"
        );
        let row = table
            .lines()
            .find(|l| l.starts_with("| below-lowest "))
            .unwrap();
        assert!(row.contains("| lookups | libfuzzer | 1/1 |"), "{row}");
        assert!(row.ends_with("| 0/1 | — | — |"), "{row}");
    }

    #[test]
    fn libfuzzer_executions_prefer_the_final_stats() {
        let log = "#2\tINITED cov: 10\n#1024\tpulse\n==1== ERROR: libFuzzer: deadly signal\n\
                   stat::number_of_executed_units: 1500\nstat::peak_rss_mb: 50\n";
        assert_eq!(libfuzzer_executions(log), Some(1500));
        assert_eq!(
            libfuzzer_executions("#2\tINITED\n#64\tNEW cov: 3\n"),
            Some(64)
        );
        assert_eq!(libfuzzer_executions("INFO: Seed: 1\n"), None);
    }

    #[test]
    fn plan_gives_distinct_seeds_and_fresh_directories() {
        let args: Vec<String> = "--bugs stale-lru,below-lowest --engines stress --trials 3 \
                                 --baseline-trials 2 --out /tmp/x"
            .split(' ')
            .map(String::from)
            .collect();
        let specs = plan(&parse(&args));
        assert_eq!(specs.len(), 2 * 3 + 2 * 2);
        let mut dirs: Vec<&PathBuf> = specs.iter().map(|s| &s.dir).collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), specs.len());
        let stale: Vec<u64> = specs
            .iter()
            .filter(|s| s.bug.name == "stale-lru" && s.generator == Generator::Steered)
            .map(|s| s.seed)
            .collect();
        assert_eq!(stale, vec![1000, 2000, 3000]);
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

    #[test]
    fn a_binary_of_the_other_build_is_refused() {
        let dir = std::env::temp_dir().join(format!("memslot-diff-eval-{}", std::process::id()));
        let (asan, plain) = (dir.join("asan"), dir.join("plain"));
        for (d, content) in [(&asan, &b"ELF..__asan_init\0.."[..]), (&plain, b"ELF....")] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("differential"), content).unwrap();
        }
        let run = |args: String| {
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = crate::cli::run_with(&args, &mut out, &mut err);
            (code, String::from_utf8(err).unwrap())
        };
        let (code, err) = run(format!(
            "eval --engines libfuzzer --fuzz-bin-dir {} --bugs stale-lru",
            asan.display()
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("is not the shipped build"), "{err}");
        let (code, err) = run(format!(
            "eval --engines libfuzzer-asan --asan-bin-dir {} --bugs stale-lru",
            plain.display()
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("is not the AddressSanitizer build"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
