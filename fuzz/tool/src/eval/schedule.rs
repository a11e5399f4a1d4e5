//! Running eval's trials a few at a time, a line per finished trial.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use super::engines::{run_trial, Launcher};
use super::format_seconds;
use super::trials::{Trial, TrialSpec};
use crate::progress::Progress;

/// Runs `specs`, `jobs` at a time, printing a line per finished trial. Returns the finished
/// trials in plan order and the errors of broken trials (after the first error no new trial
/// starts: the measurement is void anyway).
pub(super) fn run_all(
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
        let progress = Progress::new(specs.len() as u64, "trials");
        let mut done = 0;
        for (index, result) in receiver {
            done += 1;
            let line = match &result {
                Ok(trial) => format!("[{done:>4}/{}] {}", specs.len(), progress_line(trial)),
                Err(message) => format!("[{done:>4}/{}] ERROR {message}", specs.len()),
            };
            if progress.is_bar() {
                progress.line(&line);
                progress.update(done as u64, "");
            } else {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            match result {
                Ok(trial) => finished[index] = Some(trial),
                Err(message) => errors.push(message),
            }
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
