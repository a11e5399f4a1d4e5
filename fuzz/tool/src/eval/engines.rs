//! How one trial runs on each engine: `memslot-diff stress` or a fuzz binary, from an empty
//! corpus, timed by the wall clock of its process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use super::trials::{Trial, TrialSpec};
use super::{format_seconds, generator_name, Engine};

/// How trial processes are started.
pub(super) struct Launcher {
    pub(super) stress_exe: PathBuf,
    /// Fuzz binary per libFuzzer engine and target.
    pub(super) binaries: BTreeMap<(Engine, &'static str), PathBuf>,
    pub(super) dict_dir: PathBuf,
}

/// Runs one trial in a fresh directory.
pub(super) fn run_trial(spec: &TrialSpec, launcher: &Launcher) -> Result<Trial, String> {
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

pub(super) fn run_stress(
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

pub(super) fn run_libfuzzer(
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
pub fn libfuzzer_executions(log: &str) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
