//! Running one mutant under an engine in a process of its own, and many in parallel.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::options::Options;
use super::{Mutant, Outcome, Status};

/// Run one mutant in a process of its own (`bin` is the schemata build: the command line
/// tool for stress, the `differential` fuzz binary for libFuzzer) and classify it.
pub fn run_one(
    engine: Engine,
    bin: &Path,
    mutant: &Mutant,
    seed: u64,
    budget: Duration,
    scratch: &Path,
) -> Outcome {
    let mut outcome = Outcome::new(mutant);
    let dir = scratch.join(format!("mutant-{}", mutant.id));
    let log = scratch.join(format!("mutant-{}.log", mutant.id));
    let mut command = Command::new(bin);
    match engine {
        Engine::Stress => {
            command
                .args(["stress", "--json", "--seed", &seed.to_string(), "--time"])
                .arg(format!("{}ms", budget.as_millis()))
                .arg("--out")
                .arg(&dir);
        }
        Engine::Libfuzzer => {
            let corpus = dir.join("corpus");
            let _ = std::fs::create_dir_all(&corpus);
            let dict = memslot_harness::corpus::root().join("fuzz/dict/differential.dict");
            command
                .arg(&corpus)
                .arg(format!("-seed={seed}"))
                .arg(format!("-max_total_time={}", budget.as_secs().max(1)))
                .arg("-timeout=5")
                .arg("-len_control=0")
                .arg("-rss_limit_mb=4096")
                .arg("-print_final_stats=1")
                .arg(format!("-artifact_prefix={}/", dir.display()));
            if dict.is_file() {
                command.arg(format!("-dict={}", dict.display()));
            }
        }
    }
    let started = Instant::now();
    let child = std::fs::File::create(&log).and_then(|file| {
        let err = file.try_clone()?;
        command
            .env("MEMSLOT_MUTANT", mutant.id.to_string())
            .env_remove("MEMSLOT_DIFF_ZOO")
            .env_remove("MEMSLOT_DIFF_PLANT")
            .env_remove("MEMSLOT_DIFF_GENERATOR")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(if engine == Engine::Libfuzzer {
                Stdio::from(err)
            } else {
                Stdio::null()
            })
            .spawn()
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            outcome.status = Status::Crashed;
            outcome.detail = format!("could not start {}: {e}", bin.display());
            return outcome;
        }
    };
    // Both engines check their budget between programs, each a few milliseconds: a mutant
    // still running 10 s after its budget loops inside one program. Under stress, so does
    // one that has printed no progress line for HANG (stress prints one a second, between
    // programs, to the log; libFuzzer's -timeout=5 is the same rule).
    const HANG: Duration = Duration::from_secs(5);
    let limit = budget + Duration::from_secs(10);
    let (mut heard, mut heard_at) = (0, Instant::now());
    let status = loop {
        if engine == Engine::Stress {
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            if len != heard {
                (heard, heard_at) = (len, Instant::now());
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None)
                if started.elapsed() > limit
                    || (engine == Engine::Stress && heard_at.elapsed() > HANG) =>
            {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    outcome.seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    let signature = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("signature: "))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string());
    let step = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("step ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    let verdict = match engine {
        Engine::Stress => {
            if let Some(json) = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            {
                outcome.seconds = json["seconds"].as_f64().unwrap_or(outcome.seconds);
                outcome.programs = json["programs"].as_u64().unwrap_or(0);
                outcome.ops = json["ops"].as_u64().unwrap_or(0);
            }
            match status.map(|s| (s.code(), s)) {
                None => Status::TimedOut,
                Some((Some(0), _)) => Status::Survived,
                Some((Some(1), _)) => Status::Killed,
                Some((_, s)) => {
                    outcome.detail = format!("stress exited with {s}");
                    Status::Crashed
                }
            }
        }
        Engine::Libfuzzer => {
            outcome.programs = crate::eval::libfuzzer_executions(&text).unwrap_or(0);
            let artifact = |prefix: &str| {
                std::fs::read_dir(&dir).ok().is_some_and(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
                })
            };
            match status {
                None => Status::TimedOut,
                Some(_) if artifact("timeout-") => Status::TimedOut,
                Some(_) if artifact("crash-") && signature.is_some() => Status::Killed,
                Some(s) if s.success() => Status::Survived,
                Some(s) => {
                    outcome.detail = format!(
                        "the fuzz binary exited with {s}{}",
                        if artifact("crash-") {
                            " (a crash, no report)"
                        } else {
                            ""
                        }
                    );
                    Status::Crashed
                }
            }
        }
    };
    outcome.status = verdict;
    match outcome.status {
        Status::TimedOut if outcome.seconds < budget.as_secs_f64() => {
            outcome.detail = format!("one program ran over {} s", HANG.as_secs())
        }
        Status::TimedOut => outcome.detail = format!("no answer within {} s", limit.as_secs()),
        Status::Killed => {
            outcome.detail = signature.unwrap_or_else(|| "reported".to_string());
            outcome.step = step;
        }
        _ => {}
    }
    if matches!(outcome.status, Status::Survived) {
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

/// What runs on each mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `memslot-diff stress --seed S --time T` on the standard set.
    Stress,
    /// The shipped `differential` fuzz binary (`-s none`) from an empty corpus, with the
    /// target's dictionary, `-seed=S -max_total_time=T`.
    Libfuzzer,
}

impl Engine {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Stress => "stress",
            Engine::Libfuzzer => "libfuzzer",
        }
    }
}

/// The binaries mutants run in: the schemata build, and one build per patch (or why it
/// failed).
pub(super) struct Bins<'a> {
    pub(super) schemata: &'a Path,
    pub(super) patches: &'a super::patches::Built,
}

impl Bins<'_> {
    pub(super) fn run(&self, o: &Options, m: &Mutant, scratch: &Path) -> Outcome {
        match self.patches.get(&m.id) {
            None => run_one(o.engine, self.schemata, m, o.seed, o.time, scratch),
            Some(Ok(bin)) => run_one(o.engine, bin, m, o.seed, o.time, scratch),
            Some(Err((status, why))) => {
                let mut r = Outcome::new(m);
                r.status = status.clone();
                r.detail = why.clone();
                r
            }
        }
    }
}

pub(super) fn run_all(
    bins: &Bins<'_>,
    chosen: &[&Mutant],
    equivalent: &BTreeMap<String, String>,
    o: &Options,
    scratch: &Path,
    out: &mut dyn Write,
) -> Vec<Outcome> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; chosen.len()];
    std::thread::scope(|scope| {
        for _ in 0..o.jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = chosen.get(i) else { break };
                let outcome = match equivalent.get(&m.key()) {
                    Some(why) if o.check_equivalent => {
                        let mut r = bins.run(o, m, scratch);
                        r.listed_equivalent = true;
                        if !r.detected() {
                            r.status = Status::Equivalent;
                            r.detail = why.clone();
                        }
                        r
                    }
                    Some(why) => {
                        let mut r = Outcome::new(m);
                        r.status = Status::Equivalent;
                        r.detail = why.clone();
                        r
                    }
                    None => bins.run(o, m, scratch),
                };
                if tx.send((i, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let progress = crate::progress::Progress::new(chosen.len() as u64, "mutants");
        let mut done = 0;
        let mut survived = 0;
        for (i, r) in rx {
            done += 1;
            let line = if !matches!(r.status, Status::Killed | Status::Equivalent) {
                survived += 1;
                Some(format!(
                    "  [{done}/{}] {:?}: {} ({})",
                    chosen.len(),
                    r.status,
                    r.key,
                    r.detail
                ))
            } else {
                (done % 25 == 0 && !progress.is_bar())
                    .then(|| format!("  [{done}/{}]", chosen.len()))
            };
            if let Some(line) = line {
                if progress.is_bar() {
                    progress.line(&line);
                } else {
                    let _ = writeln!(out, "{line}");
                }
            }
            progress.update(done as u64, &format!("{survived} not detected"));
            outcomes[i] = Some(r);
        }
    });
    outcomes.into_iter().flatten().collect()
}
