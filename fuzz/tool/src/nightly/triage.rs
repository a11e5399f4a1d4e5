//! From crash inputs to regression cases: a signature for each crash, the smallest input per
//! signature, and for each signature not known yet a minimized scenario that replays to the
//! same signature, stored in the corpus.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memslot_harness::corpus::{self, Format};
use memslot_harness::report::{disagreeing, signature};
use memslot_harness::runner::{Divergence, RunOptions, Runner};
use memslot_harness::scenario;
use memslot_harness::targets::Target;
use memslot_harness::zoo::Lockstep;
use memslot_harness::ArchProfile;

use super::signature::crash_signature;
use super::store::{self, smallest_per_signature, Regression, Stored};
use super::summary::TargetResult;
use super::Job;
use crate::supervise::Ended;

/// Triage the crash inputs in `artifacts`; `known` holds the signatures not to store again.
pub fn triage(
    job: &Job,
    target: Target,
    bin: &Path,
    artifacts: &Path,
    known: &BTreeSet<String>,
    result: &mut TargetResult,
) -> Result<(), String> {
    let t = target.name();
    let mut crashes = Vec::new();
    for path in super::cache::files_in(artifacts)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let is_crash = ["crash-", "timeout-", "oom-", "leak-"]
            .iter()
            .any(|p| name.starts_with(p));
        if is_crash && !name.ends_with(".scenario") {
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            crashes.push((size, path));
        }
    }
    crashes.sort();
    result.crashes = crashes.len();
    if crashes.is_empty() {
        return Ok(());
    }
    job.say(&format!("{t}: triaging {} crash input(s)", crashes.len()));
    let mut found = Vec::new();
    for (size, path) in crashes {
        // A divergence is found in this process as the shipped fuzz binary finds it, a
        // hundred times faster than starting the binary; anything else (a sanitizer report,
        // a panic, a timeout) only the binary can say. The binary confirms each new
        // signature before it is stored.
        let in_process = if job.in_process_triage {
            divergence_signature(target, &path)
        } else {
            None
        };
        let sig = match in_process {
            Some(sig) => Some(sig),
            None => reproduce(job, bin, &path)?,
        };
        match sig {
            Some(sig) => found.push((size, path, sig)),
            None => {
                result.flaky += 1;
                job.say(&format!(
                    "{t}: {} does not reproduce: flaky, not stored",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    let regressions = job.corpus_root.join(t).join("regressions");
    for (sig, input) in smallest_per_signature(found) {
        if known.contains(&sig) {
            result.known_signatures.push(sig.clone());
            job.say(&format!(
                "{t}: {sig} is a known signature (corpus/{t}/regressions): not stored again"
            ));
            continue;
        }
        match regression_case(job, target, bin, &sig, &input)? {
            Err(why) => {
                result.flaky += 1;
                job.say(&format!("{t}: {sig}: {why}: flaky, not stored"));
            }
            Ok(case) => {
                let regression = Regression {
                    target: t,
                    signature: &sig,
                    found: &job.today,
                    disagree: &case.disagree,
                    found_by: &job.found_by(),
                    minimized: &case.minimized,
                    scenario: &case.scenario,
                };
                match store::store(&regressions, &regression)? {
                    Stored::New(path) => {
                        result.new_signatures.push(sig.clone());
                        job.say(&format!("{t}: stored {}", path.display()));
                    }
                    Stored::Exists(path) => {
                        result.known_signatures.push(sig.clone());
                        job.say(&format!(
                            "{t}: {} exists already: not replaced",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The signature of `input` as the fuzz binary reports it, or None when it does not crash.
fn reproduce(job: &Job, bin: &Path, input: &Path) -> Result<Option<String>, String> {
    let log = job.run.join("tmp").join("triage.log");
    let args: Vec<OsString> = vec![
        "-runs=1".into(),
        "-timeout=60".into(),
        format!("-artifact_prefix={}/tmp/", job.run.display()).into(),
        input.into(),
    ];
    let ended = job.run_supervised(bin, &args, &log, Duration::from_secs(120), &mut || {})?;
    if ended == Ended::Exited(0) {
        return Ok(None);
    }
    let text = std::fs::read(&log).unwrap_or_default();
    Ok(Some(crash_signature(&String::from_utf8_lossy(&text))))
}

/// A regression case ready to store.
struct Case {
    scenario: String,
    minimized: String,
    disagree: String,
}

/// Minimize `input` (libFuzzer's `-minimize_crash`, then by whole operations), and check that
/// its scenario text reproduces `sig` the way `cargo test` will replay it. Err: why not.
fn regression_case(
    job: &Job,
    target: Target,
    bin: &Path,
    sig: &str,
    input: &Path,
) -> Result<Result<Case, String>, String> {
    let t = target.name();
    if reproduce(job, bin, input)?.as_deref() != Some(sig) {
        return Ok(Err("the fuzz binary does not reproduce it".into()));
    }
    let size = std::fs::metadata(input).map_or(0, |m| m.len());
    job.say(&format!(
        "{t}: new signature {sig}: minimizing {} ({size} bytes)",
        input.file_name().unwrap_or_default().to_string_lossy()
    ));
    let tmp = job.run.join("tmp");
    let min = tmp.join(format!("min-{t}-{sig}"));
    let min_s = job.min_time.as_secs();
    let args: Vec<OsString> = vec![
        "-minimize_crash=1".into(),
        "-timeout=60".into(),
        format!("-max_total_time={min_s}").into(),
        format!("-exact_artifact_path={}", min.display()).into(),
        input.into(),
    ];
    let log = job.logs().join(format!("minimize-{t}-{sig}.log"));
    job.run_supervised(
        bin,
        &args,
        &log,
        Duration::from_secs(min_s * 2 + 30),
        &mut || {},
    )?;
    let mut minimized = "yes".to_string();
    let shrunk = std::fs::metadata(&min).is_ok_and(|m| m.len() > 0)
        && reproduce(job, bin, &min)?.as_deref() == Some(sig);
    if !shrunk {
        job.say(&format!(
            "{t}: {sig}: the minimized input lost the signature; keeping the original"
        ));
        std::fs::copy(input, &min).map_err(|e| format!("{}: {e}", min.display()))?;
        minimized = "no".to_string();
    }
    let loaded = match corpus::load(&min, Some(target), Some(Format::Bytes)) {
        Ok(loaded) => loaded,
        Err(e) => return Ok(Err(format!("decoding failed: {e}"))),
    };
    // The decoding's remarks, as `memslot-diff fmt` prints them (a minimized program has
    // none: it is no longer the decoded one).
    let mut text: String = loaded
        .notes
        .iter()
        .map(|n| format!("# note: {n}\n"))
        .collect();
    let file = tmp.join(format!("{sig}.scenario"));
    let disagree;
    if !is_divergence(sig) {
        // A sanitizer report or a panic: the fuzz binary itself must crash on the bytes the
        // text encodes back to.
        text += &scenario::print_at(loaded.arch, &loaded.ops);
        let bytes = corpus::to_bytes(&loaded.ops, target)?;
        let encoded = tmp.join(format!("{sig}.bin"));
        std::fs::write(&encoded, bytes).map_err(|e| format!("{}: {e}", encoded.display()))?;
        if reproduce(job, bin, &encoded)?.as_deref() != Some(sig) {
            return Ok(Err("the stored form does not reproduce it".into()));
        }
        disagree = "(sanitizer or panic: the fuzz binary crashes)".to_string();
    } else {
        // libFuzzer shrinks bytes; the harness then drops whole operations (those after the
        // divergence first) while the signature stays.
        let deadline = Instant::now() + job.min_time;
        match memslot_harness::minimize::minimize(&loaded.ops, deadline, |ops| {
            diverge(ops, loaded.arch)
        }) {
            Ok(m) => {
                text = scenario::print_at(loaded.arch, &m.ops);
                minimized += &format!(
                    ", then {} -> {} operations by memslot-diff minimize",
                    loaded.ops.len(),
                    m.ops.len()
                );
            }
            Err(e) => {
                job.say(&format!(
                    "{t}: {sig}: memslot-diff minimize failed: {e}; storing libFuzzer's form"
                ));
                text += &scenario::print_at(loaded.arch, &loaded.ops);
            }
        }
        std::fs::write(&file, &text).map_err(|e| format!("{}: {e}", file.display()))?;
        let replayed = corpus::load(&file, None, None)?;
        match diverge(&replayed.ops, replayed.arch) {
            Some(d) if signature(&d) == sig => disagree = disagreeing(&d).join(","),
            _ => return Ok(Err("the stored form does not reproduce it".into())),
        }
    }
    Ok(Ok(Case {
        scenario: text,
        minimized,
        disagree,
    }))
}

/// The signature of the divergence the fuzz input `path` of `target` shows in this process,
/// if it shows one.
fn divergence_signature(target: Target, path: &Path) -> Option<String> {
    let loaded = corpus::load(path, Some(target), Some(Format::Bytes)).ok()?;
    diverge(&loaded.ops, loaded.arch).map(|d| signature(&d))
}

/// Whether a signature is a divergence's (not a sanitizer's, a panic's or another crash's).
fn is_divergence(sig: &str) -> bool {
    !["asan-", "panic.", "timeout.", "oom.", "crash."]
        .iter()
        .any(|p| sig.starts_with(p))
}

/// Run `ops` on the lockstep this process selects (as `memslot-diff replay` would).
fn diverge(ops: &[memslot_harness::Op], arch: ArchProfile) -> Option<Box<Divergence>> {
    let lockstep = match Lockstep::from_env() {
        Ok(l) if l.arch() == arch => l,
        _ => Lockstep::at(arch),
    };
    Runner::new(lockstep.implementations(), RunOptions::default())
        .run(ops)
        .divergence
}

/// The signatures that the scenarios in `dir` (fuzz/harness/tests/known: divergences the
/// project keeps on purpose) produce today, replayed by `tool` without a planted fault.
pub fn known_elsewhere(tool: &Path, dir: &Path) -> BTreeSet<String> {
    let files: Vec<PathBuf> = corpus::files(dir).unwrap_or_default();
    if files.is_empty() {
        return BTreeSet::new();
    }
    let output = std::process::Command::new(tool)
        .arg("replay")
        .args(&files)
        .env_remove("MEMSLOT_DIFF_PLANT")
        .output();
    let text = output.map_or_else(
        |_| String::new(),
        |o| String::from_utf8_lossy(&o.stdout).into_owned(),
    );
    text.lines()
        .filter_map(|l| l.strip_prefix("  signature: "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}
