//! `memslot-diff nightly`: the unattended fuzzing job (docs/nightly.md). `ci/nightly` installs
//! what it needs, builds the tool (with the `plant` feature for `--plant`) and runs it.
//!
//! 1. builds every fuzz target with cargo-fuzz (or takes them from `--fuzz-bin-dir`);
//! 2. fuzzes each for its share of `--time` with libFuzzer's fork mode, from the working
//!    corpus in the cache plus `corpus/<target>/{seeds,regressions}` ([`fuzzing`]);
//! 3. merges and prunes what was found into the next working corpus ([`cache`]);
//! 4. gives each crash a signature, keeps the smallest input per signature, minimizes it,
//!    replays it and stores each new signature in `corpus/<target>/regressions/` ([`triage`],
//!    [`signature`], [`store`]);
//! 5. writes `summary.md` and `summary.json` ([`summary`]).
//!
//! Every fuzzer runs under a keeper ([`crate::supervise`]): it dies with the job, however the
//! job dies. Exit status: 0 nothing new, 1 new failures stored, 2 the job broke.

mod cache;
mod fuzzing;
mod signature;
mod store;
mod summary;
mod triage;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use memslot_harness::corpus;
use memslot_harness::targets::Target;
use memslot_harness::ArchProfile;

use crate::duration::parse_duration;
use crate::fuzz_build::{self, FuzzBuild};
use crate::supervise::{Ended, Supervised};
use cache::Cache;
use summary::{Summary, TargetResult};

/// The unattended fuzzing job: build, fuzz every target, merge and prune the working corpus,
/// turn each new failure into a minimized, replayable regression case, and summarize.
///
/// Exit status: 0 nothing new, 1 new failures stored under <corpus-root>/*/regressions/, 2 the
/// job broke (bad usage, a tool missing, a target that did not build, a fuzzer or merge that
/// failed, the job interrupted; the summary still lists whatever was found). Use ci/nightly,
/// which also installs clang and cargo-fuzz and builds this tool (with --plant: its `plant`
/// feature).
#[derive(Args, Debug)]
pub struct NightlyArgs {
    /// Total fuzzing budget, split evenly between the targets (90s, 5m, 1h)
    #[arg(long, value_name = "T", value_parser = parse_duration, default_value = "1h")]
    time: Duration,
    /// libFuzzer processes per target (-fork=N)
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    workers: u32,
    /// Comma-separated targets (default: differential,lookups,requests)
    #[arg(long, value_name = "a,b")]
    targets: Option<String>,
    /// The working corpus, kept between runs (default: $MEMSLOT_DIFF_CACHE, else .work/nightly)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Where summary.md, summary.json and logs/ go (default: <cache>/report)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where seeds are read and regressions written (default: corpus/)
    #[arg(long, value_name = "DIR")]
    corpus_root: Option<PathBuf>,
    /// Per new signature: the budget of libFuzzer's -minimize_crash, then of the minimizer
    /// by whole operations
    #[arg(long, value_name = "T", value_parser = parse_duration, default_value = "60s")]
    minimize_time: Duration,
    /// Interval of the progress lines (when standard error is no terminal)
    #[arg(long, value_name = "T", value_parser = parse_duration, default_value = "15s")]
    progress: Duration,
    /// Check the job on a planted bug of the core (a memslot_core::Fault name, e.g.
    /// MoveForwardOffByOne); needs a build with the `plant` feature
    #[arg(long, value_name = "FAULT")]
    plant: Option<String>,
    /// none: the shipped fuzz build; address: the AddressSanitizer build
    #[arg(long, value_name = "S", default_value = "none")]
    sanitizer: String,
    /// Take the fuzz binaries from DIR instead of building them
    #[arg(long, value_name = "DIR")]
    fuzz_bin_dir: Option<PathBuf>,
    /// Fuzz at this arch profile: x86-512 (the default) or x86-32k (today's 32,764 user
    /// slots: core, modern-32k, tree, oracle), with a working corpus of its own
    #[arg(long, value_name = "A")]
    arch: Option<String>,
}

/// One run of the job: what every step needs.
pub struct Job {
    /// The repository.
    root: PathBuf,
    /// This binary: the keeper of every fuzzer, and the replayer of the known divergences.
    tool: PathBuf,
    /// This run's scratch directory in the cache (removed at the end).
    run: PathBuf,
    out: PathBuf,
    corpus_root: PathBuf,
    workers: u32,
    /// Seconds of fuzzing per target.
    share: u64,
    min_time: Duration,
    progress_every: Duration,
    plant: Option<String>,
    today: String,
    /// The arch profile every fuzzer and replay runs at (`MEMSLOT_DIFF_ARCH`).
    arch: ArchProfile,
    /// Whether crash inputs are first classified in this process: the shipped build only,
    /// where a C port's out-of-bounds access is a divergence here as in the fuzz binary
    /// (under AddressSanitizer the binary reports it as a sanitizer crash).
    in_process_triage: bool,
    interrupted: Arc<AtomicBool>,
}

const INTERRUPTED: &str = "interrupted: the working corpus and corpus/ are left whole";

impl Job {
    fn say(&self, text: &str) {
        eprintln!("==> {text}");
    }

    fn logs(&self) -> PathBuf {
        self.run.join("logs")
    }

    /// A time stamp for names: `20261207T031811`.
    fn stamp(&self) -> String {
        now_utc().replace(['-', ':', 'Z'], "")
    }

    /// The name of `target`'s working corpus in the cache: one per arch profile.
    fn corpus_name(&self, target: &str) -> String {
        if self.arch == ArchProfile::default() {
            target.to_string()
        } else {
            format!("{target}.{}", self.arch.name())
        }
    }

    fn found_by(&self) -> String {
        match &self.plant {
            None => "memslot-diff nightly".to_string(),
            Some(p) => {
                format!("memslot-diff nightly with the planted fault {p} (MEMSLOT_DIFF_PLANT)")
            }
        }
    }

    /// Run `program` with `args` under a keeper in the scratch directory, its output to
    /// `log`, for at most `timeout`; `tick` is called about once a second. Errs when the job
    /// is interrupted.
    fn run_supervised(
        &self,
        program: &Path,
        args: &[OsString],
        log: &Path,
        timeout: Duration,
        tick: &mut dyn FnMut(),
    ) -> Result<Ended, String> {
        let tmp = self.run.join("tmp");
        let mut command = Command::new(program);
        command.args(args).current_dir(&tmp).env("TMPDIR", &tmp);
        self.supervise(&command, log, timeout, tick)
    }

    /// [`Job::run_supervised`] of a whole `command`.
    fn supervise(
        &self,
        command: &Command,
        log: &Path,
        timeout: Duration,
        tick: &mut dyn FnMut(),
    ) -> Result<Ended, String> {
        let program = Path::new(command.get_program()).display().to_string();
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child =
            Supervised::spawn(&self.tool, command, &file).map_err(|e| format!("{program}: {e}"))?;
        let interrupted = || self.interrupted.load(Ordering::Relaxed);
        let ended = child
            .wait(Instant::now() + timeout, &interrupted, tick)
            .map_err(|e| format!("{program}: {e}"))?;
        if interrupted() {
            return Err(INTERRUPTED.to_string());
        }
        Ok(ended)
    }
}

/// The scratch directory, removed however the run ends (a killed run's is removed by the
/// next one).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `memslot-diff nightly ...`: the exit status, or why the job could not start or run on.
pub fn command(a: NightlyArgs, out: &mut dyn Write) -> Result<i32, String> {
    let root = corpus::root();
    let total = a.time.as_secs();
    if total == 0 {
        return Err("nightly: --time must be at least 1s".into());
    }
    if a.progress.is_zero() {
        return Err("nightly: --progress must be more than 0".into());
    }
    let build = FuzzBuild::from_sanitizer(&a.sanitizer).ok_or_else(|| {
        format!(
            "nightly: unknown --sanitizer '{}' (known: {})",
            a.sanitizer,
            FuzzBuild::SANITIZERS.join(", ")
        )
    })?;
    let targets = parse_targets(a.targets.as_deref())?;
    if std::env::var_os("MEMSLOT_DIFF_PLANT").is_some() {
        return Err(
            "nightly: MEMSLOT_DIFF_PLANT is set in the environment: use --plant FAULT (or unset it)"
                .into(),
        );
    }
    if let Some(plant) = &a.plant {
        check_plant(plant)?;
    }
    let arch = match &a.arch {
        None => ArchProfile::from_env().map_err(|e| format!("nightly: {e}"))?,
        Some(name) => ArchProfile::parse(name).map_err(|e| format!("nightly: --arch: {e}"))?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if a.workers as usize > cores {
        eprintln!("==> warning: --workers {} on {cores} cores", a.workers);
    }
    let corpus_root = a.corpus_root.unwrap_or_else(|| root.join("corpus"));
    let corpus_root = corpus_root.canonicalize().map_err(|_| {
        format!(
            "nightly: --corpus-root {}: no such directory",
            corpus_root.display()
        )
    })?;
    if a.fuzz_bin_dir.is_none() {
        check_fuzz_tools()?;
    }
    let cache_dir = a
        .cache
        .or_else(|| {
            std::env::var_os("MEMSLOT_DIFF_CACHE")
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| root.join(".work").join("nightly"));
    let cache = Cache::open(&cache_dir).map_err(|e| format!("nightly: {e}"))?;
    let out_dir = a.out.unwrap_or_else(|| cache.dir.join("report"));
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        format!(
            "nightly: cannot create the output directory {}: {e}",
            out_dir.display()
        )
    })?;
    let out_dir = out_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // A second signal ends the job at once (the keepers still kill the fuzzers).
        let _ =
            signal_hook::flag::register_conditional_shutdown(signal, 2, Arc::clone(&interrupted));
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    let run = cache.scratch()?;
    let _scratch = Scratch(run.clone());
    for dir in ["bin", "tmp", "logs", "work", "artifacts"] {
        std::fs::create_dir_all(run.join(dir)).map_err(|e| format!("{}: {e}", run.display()))?;
    }
    let tool = PathBuf::from("/proc/self/exe");
    let tool = if tool.exists() {
        tool
    } else {
        std::env::current_exe().map_err(|e| e.to_string())?
    };
    let started = now_utc();
    let mut job = Job {
        root: root.clone(),
        tool,
        run: run.clone(),
        out: out_dir.clone(),
        corpus_root: corpus_root.clone(),
        workers: a.workers,
        share: total,
        min_time: a.minimize_time,
        progress_every: a.progress,
        plant: a.plant.clone(),
        today: started[..10].to_string(),
        arch,
        in_process_triage: build == FuzzBuild::Shipped,
        interrupted,
    };
    let known_elsewhere = triage::known_elsewhere(
        &job.tool,
        &root
            .join("fuzz")
            .join("harness")
            .join("tests")
            .join("known"),
    );
    // Before the harness first reads them: the triage's replays run as the fuzzers do.
    if let Some(plant) = &a.plant {
        std::env::set_var("MEMSLOT_DIFF_PLANT", plant);
    }
    std::env::set_var("MEMSLOT_DIFF_ARCH", arch.name());

    let mut results: Vec<TargetResult> = targets
        .iter()
        .map(|t| TargetResult::new(t.name()))
        .collect();
    let mut built = Vec::new();
    for (target, result) in targets.iter().zip(results.iter_mut()) {
        match build_target(&job, build, a.fuzz_bin_dir.as_deref(), target.name())? {
            Some(bin) => built.push((*target, bin)),
            None => result.status = "build-failed",
        }
    }
    job.share = (total / built.len().max(1) as u64).max(1);
    for (target, result) in targets.iter().zip(results.iter_mut()) {
        result.corpus_before = cache.working_corpus(&job.corpus_name(target.name()))?.len();
        result.corpus_after = result.corpus_before;
    }
    for (target, bin) in &built {
        let t = target.name();
        let result = results
            .iter_mut()
            .find(|r| r.target == t)
            .expect("every target has a result");
        let work = run.join("work").join(t);
        let artifacts = run.join("artifacts").join(t);
        prepare_inputs(&cache, &job.corpus_name(t), &corpus_root, t, &work)?;
        std::fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
        fuzzing::fuzz(&job, t, bin, &work, &artifacts, result)?;
        fuzzing::merge(&job, &cache, t, bin, &work, result)?;
        let mut known: BTreeSet<String> = known_elsewhere.clone();
        known.extend(store::known_signatures(
            &corpus_root.join(t).join("regressions"),
        )?);
        triage::triage(&job, *target, bin, &artifacts, &known, result)?;
    }

    let mut summary = Summary {
        date: job.today.clone(),
        started,
        finished: now_utc(),
        exit_status: 0,
        budget_seconds: total,
        workers: a.workers,
        sanitizer: build.sanitizer(),
        arch: arch.name(),
        plant: a.plant.clone(),
        corpus_root: corpus_root.display().to_string(),
        cache: cache.dir.display().to_string(),
        targets: results,
        fuzzed: built.len(),
        out: out_dir.display().to_string(),
    };
    summary.decide_exit_status();
    write_summary(&job, &summary)?;
    let _ = out.flush();
    eprintln!();
    eprint!("{}", summary.markdown());
    job.say(&format!(
        "summary: {0}/summary.md, {0}/summary.json",
        out_dir.display()
    ));
    Ok(summary.exit_status)
}

fn parse_targets(list: Option<&str>) -> Result<Vec<Target>, String> {
    let Some(list) = list else {
        return Ok(Target::ALL.to_vec());
    };
    list.split(',')
        .map(|name| {
            Target::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "nightly: unknown target '{name}' (known: {})",
                    known.join(" ")
                )
            })
        })
        .collect()
}

fn check_plant(plant: &str) -> Result<(), String> {
    if !cfg!(feature = "plant") {
        return Err(format!(
            "nightly: --plant {plant} needs a build with the plant feature: run ci/nightly, which \
             builds it, or cargo build --release -p memslot-diff --features plant"
        ));
    }
    let known = memslot_harness::implementations::core::fault_names();
    if !known.iter().any(|k| k == plant) {
        return Err(format!(
            "nightly: bad --plant '{plant}' (known: {})",
            known.join(", ")
        ));
    }
    Ok(())
}

/// cargo-fuzz and a clang (the C ports' coverage instrumentation) must be there to build.
fn check_fuzz_tools() -> Result<(), String> {
    if !fuzz_build::cargo_fuzz_installed() {
        return Err(
            "nightly: cargo-fuzz is missing: run ci/setup (or cargo install cargo-fuzz --locked)"
                .into(),
        );
    }
    let cc = std::env::var("CC").unwrap_or_default();
    let clang = cc.contains("clang")
        || [
            "clang", "clang-22", "clang-21", "clang-20", "clang-19", "clang-18", "clang-17",
            "clang-16", "clang-15", "clang-14",
        ]
        .iter()
        .any(|c| fuzz_build::on_path(c).is_some());
    if !clang {
        return Err("nightly: no clang: the C ports would be fuzzed without coverage feedback; install clang-19 (apt-get install clang-19; ci/nightly does) or set CC to a clang".into());
    }
    Ok(())
}

/// The fuzz binary of `target`, copied into the scratch directory (a rebuild during the run
/// cannot change it), or None when it did not build.
fn build_target(
    job: &Job,
    build: FuzzBuild,
    prebuilt: Option<&Path>,
    target: &str,
) -> Result<Option<PathBuf>, String> {
    let copy = job.run.join("bin").join(target);
    let source = match prebuilt {
        Some(dir) => dir.join(target),
        None => {
            job.say(&format!(
                "building fuzz target {target} (sanitizer: {})",
                build.sanitizer()
            ));
            let log = job.logs().join(format!("build-{target}.log"));
            let features: &[&str] = if job.plant.is_some() { &["plant"] } else { &[] };
            let command = build.command(&job.root, &[target], features);
            let ended = job.supervise(&command, &log, Duration::from_secs(3600), &mut || {})?;
            let text =
                String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
            if text.contains("WITHOUT coverage or sanitizer") {
                return Err("nightly: the C ports were built without instrumentation (see the build log): fix CC/clang first".into());
            }
            if ended != Ended::Exited(0) {
                eprint!("{}", fuzzing::tail(&text, 20));
                job.say(&format!(
                    "fuzz target {target} FAILED to build (log: {}/logs/build-{target}.log); continuing with the others",
                    job.out.display()
                ));
                return Ok(None);
            }
            build.bin_dir(&job.root).join(target)
        }
    };
    match std::fs::copy(&source, &copy) {
        Ok(_) => Ok(Some(copy)),
        Err(e) => {
            job.say(&format!("fuzz target {target}: {}: {e}", source.display()));
            Ok(None)
        }
    }
}

/// The inputs a target's fuzzer starts from: its working corpus, plus the committed seeds and
/// regressions as fuzz inputs.
fn prepare_inputs(
    cache: &Cache,
    corpus_name: &str,
    corpus_root: &Path,
    target: &str,
    work: &Path,
) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    for file in cache.working_corpus(corpus_name)? {
        let dest = work.join(file.file_name().unwrap_or_default());
        std::fs::copy(&file, &dest).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let seeds = corpus::fuzz_inputs(corpus_root, target)?;
    for skipped in &seeds.skipped {
        eprintln!("==> {target}: seed skipped: {skipped}");
    }
    for (name, bytes) in seeds.inputs {
        let dest = work.join(name);
        if !dest.exists() {
            std::fs::write(&dest, bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
        }
    }
    Ok(())
}

/// summary.md, summary.json (each by rename) and logs/ in the output directory.
fn write_summary(job: &Job, summary: &Summary) -> Result<(), String> {
    let logs = job.out.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    copy_dir(&job.logs(), &logs)?;
    for (name, text) in [
        ("summary.md", summary.markdown()),
        ("summary.json", summary.json()),
    ] {
        let path = job.out.join(name);
        let tmp = job.out.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for file in cache::files_in(from)? {
        let dest = to.join(file.file_name().unwrap_or_default());
        std::fs::copy(&file, &dest).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Now in UTC, `2026-12-07T03:18:11Z`.
fn now_utc() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    /// An empty directory of this test process, `name` telling tests apart.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "memslot-diff-nightly-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
