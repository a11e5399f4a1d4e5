//! The report: the score, the tables, the survivors, and the chart.

use std::collections::BTreeMap;

use super::options::Options;
use super::{Outcome, Status, EQUIVALENT_LIST};

/// The mutants still alive over time, one line per port and one for the patches (the eval
/// chart's survival plot: detection times against the budget).
pub(super) fn chart(outcomes: &[Outcome], o: &Options) -> Result<String, String> {
    const KINDS: [&str; 6] = ["pre", "post", "post15", "modern", "core", "patches"];
    let kind = |r: &Outcome| {
        if r.operator == "patch" {
            "patches"
        } else {
            KINDS
                .iter()
                .copied()
                .find(|k| r.file.split('/').next() == Some(*k))
                .unwrap_or("patches")
        }
    };
    let lines: Vec<crate::chart::Line> = KINDS
        .iter()
        .filter_map(|&k| {
            let rs: Vec<&Outcome> = outcomes
                .iter()
                .filter(|r| kind(r) == k && r.counted())
                .collect();
            if rs.is_empty() {
                return None;
            }
            let times: Vec<f64> = rs
                .iter()
                .filter(|r| r.detected())
                .map(|r| r.seconds)
                .collect();
            let what = match k {
                "patches" => "patch mutants".to_string(),
                "core" => "core (cargo-mutants)".to_string(),
                port => format!("{port} port"),
            };
            Some(crate::chart::Line {
                key: k.to_string(),
                dashed: false,
                label: format!(
                    "{what} · {} ({}/{} detected)",
                    o.engine.name(),
                    times.len(),
                    rs.len()
                ),
                survival: crate::eval::survival(&times, rs.len()),
                cap_seconds: o.time.as_secs_f64(),
            })
        })
        .collect();
    crate::chart::survival(
        &lines,
        &format!(
            "memslot-diff mutants: mutants still alive over time ({} s budget)",
            o.time.as_secs_f64()
        ),
        "non-equivalent mutants still alive",
    )
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn seconds(s: Option<f64>) -> String {
    match s {
        None => "-".to_string(),
        Some(s) if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) => format!("{s:.1} s"),
    }
}

/// The report: the score, a table per file and function, the survivors with their diff.
pub(super) fn summarize(outcomes: &[Outcome], o: &Options) -> String {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|r| f(r)).count();
    let equivalent = count(&|r| matches!(r.status, Status::Equivalent));
    let detected = count(&|r| r.detected());
    let considered = count(&|r| r.counted());
    let unviable = count(&|r| matches!(r.status, Status::Unviable));
    let kill_times: Vec<f64> = outcomes
        .iter()
        .filter(|r| r.detected())
        .map(|r| r.seconds)
        .collect();
    let slowest = kill_times.iter().copied().fold(0.0, f64::max);
    let mut s = format!(
        "# Mutation score ({} engine, seed {}, {} s per mutant)\n\n\
         **{detected} of {considered} non-equivalent mutants detected ({:.1}%)**: {} killed by a report, \
         {} timed out (the mutant hangs), {} crashed the process; {} survived; {equivalent} equivalent \
         (reference/c/{EQUIVALENT_LIST}, {}){}. Time to detect: median {}, slowest {}.\n\n",
        o.engine.name(),
        o.seed,
        o.time.as_secs_f64(),
        if considered == 0 { 100.0 } else { 100.0 * detected as f64 / considered as f64 },
        count(&|r| matches!(r.status, Status::Killed)),
        count(&|r| matches!(r.status, Status::TimedOut)),
        count(&|r| matches!(r.status, Status::Crashed)),
        count(&|r| matches!(r.status, Status::Survived)),
        super::cargo_mutants::EQUIVALENT_LIST,
        if unviable > 0 {
            format!("; {unviable} of the core's generated mutants rejected by the compiler (unviable, not counted)")
        } else {
            String::new()
        },
        seconds(median(kill_times.clone())),
        seconds(Some(slowest).filter(|_| !kill_times.is_empty())),
    );
    if let Some(why) = &o.core_missing {
        s += &format!("**Not in this run:** {why}.\n\n");
    }
    if o.check_equivalent {
        let listed = count(&|r| r.listed_equivalent);
        let refuted: Vec<&Outcome> = outcomes
            .iter()
            .filter(|r| r.listed_equivalent && r.detected())
            .collect();
        s += &format!(
            "The listed equivalent mutants were run too (`--check-equivalent`): {} of {listed} went undetected, as claimed.\n",
            listed - refuted.len()
        );
        for r in refuted {
            s += &format!(
                "- **listed as equivalent but detected** ({}): `{}`\n",
                r.detail, r.key
            );
        }
        s += "\n";
    }
    s += "| file | function | mutants | detected | survived | equivalent | kill rate | median time to detect |\n|---|---|---|---|---|---|---|---|\n";
    let mut groups: BTreeMap<(&str, &str), Vec<&Outcome>> = BTreeMap::new();
    for r in outcomes {
        groups.entry((&r.file, &r.function)).or_default().push(r);
    }
    for ((file, function), rs) in &groups {
        let eq = rs
            .iter()
            .filter(|r| matches!(r.status, Status::Equivalent))
            .count();
        let det: Vec<f64> = rs
            .iter()
            .filter(|r| r.detected())
            .map(|r| r.seconds)
            .collect();
        let surv = rs
            .iter()
            .filter(|r| matches!(r.status, Status::Survived))
            .count();
        let n = rs.iter().filter(|r| r.counted()).count();
        s += &format!(
            "| {file} | {function} | {} | {} | {surv} | {eq} | {} | {} |\n",
            rs.len(),
            det.len(),
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * det.len() as f64 / n as f64)
            },
            seconds(median(det.clone())),
        );
    }
    let mut by_operator: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in outcomes.iter().filter(|r| r.counted()) {
        let e = by_operator.entry(r.operator).or_default();
        e.0 += 1;
        e.1 += usize::from(r.detected());
    }
    s += "\n| operator | mutants | detected |\n|---|---|---|\n";
    for (op, (n, d)) in by_operator {
        s += &format!("| {op} | {n} | {d} |\n");
    }
    let survivors: Vec<&Outcome> = outcomes
        .iter()
        .filter(|r| matches!(r.status, Status::Survived))
        .collect();
    if !survivors.is_empty() {
        s += "\n## Survivors\n\n";
        for r in survivors {
            match &r.patch {
                Some(patch) => {
                    s += &format!(
                        "- `{}` ({} programs in {:.0} s)\n  ```diff\n{}  ```\n",
                        r.key,
                        r.programs,
                        r.seconds,
                        patch
                            .lines()
                            .filter(|l| !l.starts_with("# "))
                            .map(|l| format!("  {l}\n"))
                            .collect::<String>()
                    );
                }
                None => {
                    s += &format!(
                        "- `{}` ({}:{}, {} programs in {:.0} s)\n  ```diff\n  - {}\n  + {}\n  ```\n",
                        r.key, r.file, r.line, r.programs, r.seconds, r.original, r.replacement
                    );
                }
            }
        }
    }
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|r| matches!(r.status, Status::BuildFailed))
        .collect();
    if !failed.is_empty() {
        s += "\n## Patches that did not build\n\n";
        for r in failed {
            s += &format!("- `{}`: {}\n", r.key, r.detail);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::options::Options;
    use crate::mutants::{Engine, Mutant, Status};
    use std::path::PathBuf;
    use std::time::Duration;

    fn outcome(file: &str, operator: &'static str, status: Status, seconds: f64) -> Outcome {
        let mut r = Outcome::new(&Mutant {
            id: 0,
            file: file.into(),
            function: "f".into(),
            line: 1,
            operator,
            original: "a".into(),
            replacement: "b".into(),
            occurrence: 1,
        });
        r.status = status;
        r.seconds = seconds;
        r
    }

    #[test]
    fn the_chart_has_a_line_per_port_and_patches_without_equivalents() {
        let o = Options {
            engine: Engine::Stress,
            time: Duration::from_secs(60),
            jobs: 1,
            seed: 1,
            sample: None,
            only: Vec::new(),
            keys: None,
            out: PathBuf::new(),
            list: false,
            bin: None,
            check_equivalent: false,
            core_missing: None,
        };
        let outcomes = [
            outcome("pre/kvm_main.c", "drop", Status::Killed, 0.01),
            outcome("pre/kvm_main.c", "drop", Status::Survived, 60.0),
            outcome("pre/kvm_main.c", "drop", Status::Equivalent, 0.0),
            outcome("post15/kvm_host.h", "negate", Status::Crashed, 0.2),
            outcome("core/src/tree.rs", "patch", Status::Killed, 1.5),
        ];
        let svg = chart(&outcomes, &o).unwrap();
        assert_eq!(
            svg.matches("stroke-width=\"2\"").count(),
            3 * 2,
            "a line and a legend key each: {svg}"
        );
        assert!(svg.contains("pre port · stress (1/2 detected)"), "{svg}");
        assert!(svg.contains("post15 port · stress (1/1 detected)"), "{svg}");
        assert!(
            svg.contains("patch mutants · stress (1/1 detected)"),
            "{svg}"
        );
        assert!(!svg.contains("post port"), "{svg}");
    }
}
