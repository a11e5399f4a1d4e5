//! The statistics of eval's trials: quantiles, five-number summaries, survival curves, and the
//! trials grouped by bug × engine × generator.

use serde::Serialize;

use super::Trial;

/// The `q`-quantile of sorted values, interpolating linearly between the closest ranks (R's
/// type 7, numpy's default): the median of an even count is the mean of the middle two.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (below, above) = (rank.floor() as usize, rank.ceil() as usize);
    let weight = rank - below as f64;
    Some(sorted[below] * (1.0 - weight) + sorted[above] * weight)
}

/// Five-number summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            min: *sorted.first()?,
            q1: quantile(&sorted, 0.25)?,
            median: quantile(&sorted, 0.5)?,
            q3: quantile(&sorted, 0.75)?,
            max: *sorted.last()?,
        })
    }
}

/// The fraction of `trials` still undetected over time, as steps `(t, fraction after t)` in
/// increasing `t`; it starts at 1 before the first step. Every undetected trial is censored at
/// its cap, which is never before a detection, so this is the Kaplan–Meier estimate.
pub fn survival(detection_seconds: &[f64], trials: usize) -> Vec<(f64, f64)> {
    let mut sorted = detection_seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (found, &t) in sorted.iter().enumerate() {
        let remaining = trials.saturating_sub(found + 1) as f64 / trials.max(1) as f64;
        match steps.last_mut() {
            // Detections at the same instant are one step.
            Some(last) if last.0 == t => last.1 = remaining,
            _ => steps.push((t, remaining)),
        }
    }
    steps
}

/// The trials of one bug × engine × generator, summarized.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub bug: &'static str,
    pub engine: &'static str,
    pub generator: &'static str,
    pub trials: usize,
    pub detected: usize,
    pub cap_seconds: f64,
    /// Time to detection over the detected trials.
    pub seconds: Option<Spread>,
    /// Median executions to detection over the detected trials.
    pub median_executions: Option<f64>,
    /// The survival curve (see [`survival`]).
    pub survival: Vec<(f64, f64)>,
}

/// Groups `trials` by bug × engine × generator, in the order they first appear.
pub fn summarize(trials: &[Trial]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut members: Vec<Vec<&Trial>> = Vec::new();
    for trial in trials {
        let key = (trial.bug, trial.engine, trial.generator);
        match groups
            .iter()
            .position(|g| (g.bug, g.engine, g.generator) == key)
        {
            Some(i) => members[i].push(trial),
            None => {
                groups.push(Group {
                    bug: trial.bug,
                    engine: trial.engine,
                    generator: trial.generator,
                    trials: 0,
                    detected: 0,
                    cap_seconds: 0.0,
                    seconds: None,
                    median_executions: None,
                    survival: Vec::new(),
                });
                members.push(vec![trial]);
            }
        }
    }
    for (group, members) in groups.iter_mut().zip(&members) {
        let detected: Vec<&&Trial> = members.iter().filter(|t| t.detected).collect();
        let seconds: Vec<f64> = detected.iter().map(|t| t.seconds).collect();
        let mut executions: Vec<f64> = detected
            .iter()
            .filter_map(|t| t.executions.map(|n| n as f64))
            .collect();
        executions.sort_by(f64::total_cmp);
        group.trials = members.len();
        group.detected = detected.len();
        group.cap_seconds = members.iter().map(|t| t.cap_seconds).fold(0.0, f64::max);
        group.seconds = Spread::of(&seconds);
        group.median_executions = quantile(&executions, 0.5);
        group.survival = survival(&seconds, members.len());
    }
    groups
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.25), Some(7.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), Some(1.75));
        let spread = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            spread,
            Spread {
                min: 1.0,
                q1: 2.0,
                median: 3.0,
                q3: 4.0,
                max: 5.0
            }
        );
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn survival_steps_down_per_detection() {
        assert_eq!(survival(&[], 3), vec![]);
        assert_eq!(
            survival(&[2.0, 0.5], 4),
            vec![(0.5, 0.75), (2.0, 0.5)],
            "two of four found: half survive the cap"
        );
        assert_eq!(
            survival(&[1.0, 1.0, 3.0], 3),
            vec![(1.0, 1.0 / 3.0), (3.0, 0.0)],
            "ties are one step"
        );
    }

    fn trial(
        bug: &'static str,
        engine: &'static str,
        generator: &'static str,
        seconds: Option<f64>,
    ) -> Trial {
        Trial {
            bug,
            engine,
            generator,
            seed: 1000,
            detected: seconds.is_some(),
            seconds: seconds.unwrap_or(10.0),
            executions: Some(seconds.map_or(100, |s| (s * 100.0) as u64)),
            cap_seconds: 10.0,
            dir: String::new(),
        }
    }

    pub(crate) fn fixed_results() -> Vec<Trial> {
        vec![
            trial("stale-lru", "stress", "steered", Some(0.01)),
            trial("stale-lru", "stress", "steered", Some(0.03)),
            trial("stale-lru", "stress", "random", None),
            trial("stale-lru", "stress", "random", Some(5.0)),
            trial("below-lowest", "libfuzzer", "steered", Some(2.0)),
            trial("below-lowest", "libfuzzer", "random", None),
        ]
    }

    #[test]
    fn summary_groups_by_bug_engine_generator() {
        let groups = summarize(&fixed_results());
        assert_eq!(groups.len(), 4);
        let steered = &groups[0];
        assert_eq!(
            (steered.bug, steered.engine, steered.generator),
            ("stale-lru", "stress", "steered")
        );
        assert_eq!((steered.detected, steered.trials), (2, 2));
        assert_eq!(steered.seconds.unwrap().median, 0.02);
        assert_eq!(steered.median_executions, Some(2.0));
        let baseline = &groups[1];
        assert_eq!((baseline.detected, baseline.trials), (1, 2));
        assert_eq!(baseline.survival, vec![(5.0, 0.5)]);
        assert_eq!(groups[3].seconds, None);
    }
}
