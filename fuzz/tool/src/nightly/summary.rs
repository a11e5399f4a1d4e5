//! The nightly job's summary: `summary.md` for people, `summary.json` for dashboards.

use serde::Serialize;

/// What happened to one target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetResult {
    pub target: String,
    /// `ok`, `build-failed`, `fuzzer-failed` or `merge-failed`.
    pub status: &'static str,
    pub seconds: u64,
    pub executions: u64,
    pub exec_per_sec: u64,
    pub edges: u64,
    pub features: u64,
    pub corpus_before: usize,
    pub corpus_after: usize,
    pub crashes: usize,
    pub new_signatures: Vec<String>,
    pub known_signatures: Vec<String>,
    pub flaky: usize,
}

impl TargetResult {
    pub fn new(target: &str) -> TargetResult {
        TargetResult {
            target: target.to_string(),
            status: "ok",
            seconds: 0,
            executions: 0,
            exec_per_sec: 0,
            edges: 0,
            features: 0,
            corpus_before: 0,
            corpus_after: 0,
            crashes: 0,
            new_signatures: Vec::new(),
            known_signatures: Vec::new(),
            flaky: 0,
        }
    }
}

/// The whole job.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub date: String,
    pub started: String,
    pub finished: String,
    pub exit_status: i32,
    pub budget_seconds: u64,
    pub workers: u32,
    pub sanitizer: &'static str,
    pub arch: &'static str,
    pub plant: Option<String>,
    pub corpus_root: String,
    pub cache: String,
    pub targets: Vec<TargetResult>,
    /// Targets that were fuzzed (those that built).
    #[serde(skip)]
    pub fuzzed: usize,
    /// Where the logs were copied.
    #[serde(skip)]
    pub out: String,
}

impl Summary {
    /// The exit status: 2 when the job broke (a target that did not build, a fuzzer or
    /// merge that failed), else 1 when it stored new failures, else 0.
    pub fn decide_exit_status(&mut self) {
        let broke = self.targets.iter().any(|t| t.status != "ok");
        self.exit_status = if broke {
            2
        } else if self.new_total() > 0 {
            1
        } else {
            0
        };
    }

    fn new_total(&self) -> usize {
        self.targets.iter().map(|t| t.new_signatures.len()).sum()
    }

    pub fn markdown(&self) -> String {
        let verdict = match self.exit_status {
            2 => format!(
                "the job BROKE (exit 2): see the status column and {}/logs/",
                self.out
            ),
            1 => format!(
                "{} NEW failure(s) stored under {}/*/regressions/ (exit 1)",
                self.new_total(),
                self.corpus_root
            ),
            _ => "nothing new (exit 0)".to_string(),
        };
        let plant = self
            .plant
            .as_ref()
            .map(|p| format!("; planted fault: {p}"))
            .unwrap_or_default();
        // The default profile goes unsaid; another one names its working corpus too.
        let other_arch =
            (self.arch != memslot_harness::ArchProfile::default().name()).then_some(self.arch);
        let arch = other_arch
            .map(|a| format!(", arch {a}"))
            .unwrap_or_default();
        let mut md = format!(
            "# memslot-diff nightly: {}\n\n{verdict}\n\nStarted {}, finished {}; budget {}s over {} target(s), {} worker(s), sanitizer {}{arch}{plant}.\n\n",
            self.date, self.started, self.finished, self.budget_seconds, self.fuzzed, self.workers, self.sanitizer
        );
        md.push_str("| target | status | seconds | executions | exec/s | edges | features | corpus before | corpus after | crashes | new signatures | known signatures | flaky |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let list = |sigs: &[String]| {
            if sigs.is_empty() {
                "-".to_string()
            } else {
                sigs.join(" ")
            }
        };
        for t in &self.targets {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                t.target,
                t.status,
                t.seconds,
                t.executions,
                t.exec_per_sec,
                t.edges,
                t.features,
                t.corpus_before,
                t.corpus_after,
                t.crashes,
                list(&t.new_signatures),
                list(&t.known_signatures),
                t.flaky
            ));
        }
        md.push('\n');
        let replay = match &self.plant {
            None => "cargo memslot-diff replay".to_string(),
            Some(p) => format!(
                "MEMSLOT_DIFF_PLANT={p} cargo run --release -p memslot-diff --features plant -- replay"
            ),
        };
        for t in &self.targets {
            for sig in &t.new_signatures {
                md.push_str(&format!(
                    "- new: `corpus/{0}/regressions/{sig}.scenario`: replay with `{replay} {1}/{0}/regressions/{sig}.scenario`\n",
                    t.target, self.corpus_root
                ));
            }
        }
        md.push_str(&format!(
            "\nEdges and features are libFuzzer's `cov` and `ft` at the end of the run; corpus sizes count the working corpus in `{}/corpus/<target>{}`.\n",
            self.cache,
            other_arch.map(|a| format!(".{a}")).unwrap_or_default()
        ));
        md
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let mut lookups = TargetResult::new("lookups");
        lookups.new_signatures = vec!["array.create.core".into(), "array.move.core".into()];
        lookups.executions = 11617;
        Summary {
            date: "2026-12-05".into(),
            started: "2026-12-05T10:20:26Z".into(),
            finished: "2026-12-05T10:23:52Z".into(),
            exit_status: 0,
            budget_seconds: 60,
            workers: 2,
            sanitizer: "none",
            arch: "x86-512",
            plant: Some("MoveForwardOffByOne".into()),
            corpus_root: "/tmp/c".into(),
            cache: "/tmp/cache".into(),
            targets: vec![TargetResult::new("differential"), lookups],
            fuzzed: 2,
            out: "/tmp/out".into(),
        }
    }

    #[test]
    fn exit_status_two_wins_over_one() {
        let mut s = summary();
        s.decide_exit_status();
        assert_eq!(s.exit_status, 1);
        s.targets[0].status = "merge-failed";
        s.decide_exit_status();
        assert_eq!(s.exit_status, 2);
        s.targets[0].status = "ok";
        s.targets[1].new_signatures.clear();
        s.decide_exit_status();
        assert_eq!(s.exit_status, 0);
    }

    #[test]
    fn markdown_rows_and_replay_lines() {
        let mut s = summary();
        s.decide_exit_status();
        let md = s.markdown();
        assert!(
            md.contains("\n2 NEW failure(s) stored under /tmp/c/*/regressions/ (exit 1)\n"),
            "{md}"
        );
        assert!(md.contains("budget 60s over 2 target(s), 2 worker(s), sanitizer none; planted fault: MoveForwardOffByOne."), "{md}");
        assert!(
            md.contains("\n| differential | ok | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | - | - | 0 |\n"),
            "{md}"
        );
        assert!(md.contains("| lookups | ok | 0 | 11617 | 0 | 0 | 0 | 0 | 0 | 0 | array.create.core array.move.core | - | 0 |"), "{md}");
        s.arch = "x86-32k";
        assert!(s
            .markdown()
            .contains("sanitizer none, arch x86-32k; planted fault"));
        assert!(md.contains("- new: `corpus/lookups/regressions/array.move.core.scenario`: replay with `MEMSLOT_DIFF_PLANT=MoveForwardOffByOne cargo run --release -p memslot-diff --features plant -- replay /tmp/c/lookups/regressions/array.move.core.scenario`\n"), "{md}");
    }

    #[test]
    fn json_keeps_the_field_order_and_names() {
        let value: serde_json::Value = serde_json::from_str(&summary().json()).unwrap();
        assert_eq!(value["plant"], "MoveForwardOffByOne");
        assert_eq!(value["targets"][1]["new_signatures"][1], "array.move.core");
        let text = summary().json();
        let order = [
            "\"date\"",
            "\"started\"",
            "\"finished\"",
            "\"exit_status\"",
            "\"budget_seconds\"",
            "\"targets\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("\"fuzzed\""));
    }
}
