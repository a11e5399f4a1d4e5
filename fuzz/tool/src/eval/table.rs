//! eval's Markdown table and how it writes times and counts.

use std::fmt::Write as _;

use memslot_harness::zoo;

use super::{Group, Options};

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

#[cfg(test)]
mod tests {
    use super::super::stats::{summarize, tests::fixed_results};
    use super::super::tests::parse;
    use super::*;

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
}
