//! Progress of long jobs (stress, eval, nightly, throughput, mutants) on standard error: a
//! progress bar when standard error is a terminal, plain lines otherwise (CI logs, pipes,
//! `mutants`' hang watchdog, which reads `stress`'s lines).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// One job's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar of `total` units (`unit`: "s", "trials", "mutants"...) when standard error is a
    /// terminal, else nothing but the plain lines the caller prints.
    pub fn new(total: u64, unit: &str) -> Progress {
        Progress::with_terminal(std::io::stderr().is_terminal(), total, unit)
    }

    fn with_terminal(terminal: bool, total: u64, unit: &str) -> Progress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit}  {{msg}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Progress { bar }
    }

    /// Whether the bar is shown (then plain progress lines are not printed).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// A name in front of the bar.
    pub fn set_prefix(&self, prefix: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(prefix.to_string());
        }
    }

    /// Move the bar to `position` with `message` beside it.
    pub fn update(&self, position: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message.to_string());
        }
    }

    /// A line of the command's output (`out`: standard output), written with the bar out of
    /// the way.
    pub fn print(&self, out: &mut dyn std::io::Write, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(out, "{text}");
            }),
            None => {
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// A progress line: printed above the bar, or to standard error when there is none.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_without_a_terminal() {
        let p = Progress::with_terminal(false, 10, "s");
        assert!(!p.is_bar());
        p.update(5, "half");
        let bar = Progress::with_terminal(true, 10, "s");
        assert!(bar.is_bar());
        bar.update(5, "half");
        assert_eq!(bar.bar.as_ref().map(|b| b.position()), Some(5));
    }
}
