//! One target's turn: libFuzzer in fork mode for its share of the budget, with progress, then
//! the merge that prunes what it found into the next generation of the working corpus.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use super::cache::{files_in, Cache};
use super::signature::FuzzerStats;
use super::summary::TargetResult;
use super::Job;
use crate::progress::Progress;
use crate::supervise::Ended;

/// Fuzz `target` with `bin` from the inputs in `work`; crash inputs go to `artifacts`.
/// Fills in the result's figures; a fuzzer that failed sets its status.
pub fn fuzz(
    job: &Job,
    target: &str,
    bin: &Path,
    work: &Path,
    artifacts: &Path,
    result: &mut TargetResult,
) -> Result<(), String> {
    let mut args: Vec<OsString> = [
        format!("-fork={}", job.workers),
        "-ignore_crashes=1".into(),
        "-ignore_timeouts=1".into(),
        "-ignore_ooms=1".into(),
        "-timeout=60".into(),
        format!("-max_total_time={}", job.share),
        format!("-artifact_prefix={}/", artifacts.display()),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let dict = job
        .root
        .join("fuzz")
        .join("dict")
        .join(format!("{target}.dict"));
    if dict.is_file() {
        args.push(format!("-dict={}", dict.display()).into());
    }
    args.push(work.into());
    let log = job.logs().join(format!("fuzz-{target}.log"));
    job.say(&format!(
        "fuzzing {target} for {}s with {} worker(s): {} inputs (working corpus {}, plus seeds and regressions)",
        job.share,
        job.workers,
        files_in(work)?.len(),
        result.corpus_before
    ));
    let start = Instant::now();
    let progress = Progress::new(job.share, "s");
    progress.set_prefix(&format!("[{target}]"));
    let mut last_line = Instant::now();
    let mut report = |final_line: bool| {
        let due = progress.is_bar() || final_line || last_line.elapsed() >= job.progress_every;
        if !due {
            return;
        }
        let Some(stats) = FuzzerStats::last_in(&log_tail(&log)) else {
            return;
        };
        let elapsed = start.elapsed().as_secs();
        let figures = format!(
            "execs {}  exec/s {}  cov {} ft {}  corpus {}  failures {}",
            stats.executions,
            stats.exec_per_sec,
            stats.edges,
            stats.features,
            stats.corpus,
            stats.failures
        );
        progress.update(elapsed.min(job.share), &figures);
        if !progress.is_bar() {
            last_line = Instant::now();
            progress.line(&format!(
                "  [{target}] {elapsed:>4}s/{}s  {figures}",
                job.share
            ));
        }
    };
    let ended = job.run_supervised(
        bin,
        &args,
        &log,
        Duration::from_secs(job.share + 600),
        &mut || report(false),
    )?;
    report(true);
    drop(progress);
    let elapsed = start.elapsed().as_secs();
    result.seconds = elapsed;
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    if let Some(stats) = FuzzerStats::last_in(&text) {
        result.executions = stats.executions;
        result.edges = stats.edges;
        result.features = stats.features;
        result.exec_per_sec = stats.executions / elapsed.max(1);
    }
    let failed = match ended {
        Ended::Exited(0) => None,
        // With -ignore_crashes, -fork mode exits with the status of its last failed job
        // (77, 70, 71) after an orderly "INFO: exiting: N": a crash found, not a broken fuzzer.
        Ended::Exited(rc) if text.contains(&format!("INFO: exiting: {rc} time:")) => None,
        Ended::Exited(rc) => Some(format!("exited with status {rc}")),
        Ended::Killed => Some(format!(
            "ran past its deadline ({}s) and was killed",
            job.share + 600
        )),
    };
    if let Some(why) = failed {
        job.say(&format!(
            "the fuzzer of {target} {why} (log: {}/logs/fuzz-{target}.log); merging and triaging what it left",
            job.out.display()
        ));
        eprint!("{}", tail(&text, 15));
        result.status = "fuzzer-failed";
    }
    Ok(())
}

/// Merge and prune `work` into a new generation (`-merge=1`, libFuzzer's cmin) and make it
/// the working corpus; sets the corpus size after, or the status when the merge failed.
pub fn merge(
    job: &Job,
    cache: &Cache,
    target: &str,
    bin: &Path,
    work: &Path,
    result: &mut TargetResult,
) -> Result<(), String> {
    let name = job.corpus_name(target);
    let generation = cache.new_generation(&name, &job.stamp())?;
    let log = job.logs().join(format!("merge-{target}.log"));
    let args: Vec<OsString> = vec![
        "-merge=1".into(),
        "-timeout=60".into(),
        format!(
            "-merge_control_file={}/merge-{target}.ctl",
            job.run.display()
        )
        .into(),
        generation.clone().into(),
        work.into(),
    ];
    let ended = job.run_supervised(bin, &args, &log, Duration::from_secs(1800), &mut || {})?;
    let kept = files_in(&generation)?.len();
    match ended {
        Ended::Exited(0) if kept == 0 => {
            // Every input crashed (a planted bug can do that): keep the corpus we had.
            let _ = std::fs::remove_dir_all(&generation);
            job.say(&format!(
                "merging {target} kept no input (all crash?): the working corpus is unchanged"
            ));
        }
        Ended::Exited(0) => {
            cache.switch_to(&name, &generation)?;
            result.corpus_after = cache.working_corpus(&name)?.len();
        }
        _ => {
            let _ = std::fs::remove_dir_all(&generation);
            job.say(&format!(
                "merging the corpus of {target} FAILED (log: {}/logs/merge-{target}.log): the working corpus is unchanged",
                job.out.display()
            ));
            let text = std::fs::read(&log).unwrap_or_default();
            eprint!("{}", tail(&String::from_utf8_lossy(&text), 10));
            if result.status == "ok" {
                result.status = "merge-failed";
            }
        }
    }
    Ok(())
}

/// The end of a fuzzer's log, where its last status line is (the whole log of an hour's
/// fork mode runs to megabytes, and progress looks every second).
fn log_tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut tail = Vec::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let len = file.metadata().map_or(0, |m| m.len());
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
        let _ = file.take(TAIL).read_to_end(&mut tail);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}
