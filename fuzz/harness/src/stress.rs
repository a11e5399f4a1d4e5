//! `memslot-diff stress`: an RNG-driven generator that runs on stable Rust without libFuzzer.
//!
//! Each iteration builds one program from a seed derived from `--seed` and the iteration
//! number ([`program`]), runs it on every implementation and stops at the first divergence,
//! writing the failing scenario to a file. Programs mix short random intent sequences, realistic
//! guest layouts followed by churn, and long sequences (thousands of operations, up to all 512
//! slots).
//!
//! It honours the process's lockstep and generator ([`crate::zoo`]): with a zoo bug selected it
//! runs that bug's state, arms `fail-prepare` now and then if the bug needs it, and for the
//! `update-absent-id` bug drives update_memslots directly ([`crate::lowlevel`]) with random
//! calls; with the random generator it draws only the baseline's intents and no guest layouts.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::generate::{Generator, Intent, RngSource, Source, Weights};
use crate::ops::Op;
use crate::realistic::Script;
use crate::report::{render, Context};
use crate::runner::{RunOptions, Runner};
use crate::scenario;
use crate::zoo::{self, Generator as Drawn};

/// What kind of program a seed produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 1..64 random intents.
    Short,
    /// A realistic script or two, then up to 64 random intents.
    Realistic,
    /// A realistic script, then 500..3000 intents of churn.
    Long,
}

impl Kind {
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "short" => Some(Kind::Short),
            "realistic" => Some(Kind::Realistic),
            "long" => Some(Kind::Long),
            _ => None,
        }
    }
}

/// SplitMix64: the per-iteration seed.
pub fn iteration_seed(seed: u64, iteration: u64) -> u64 {
    let mut z = seed.wrapping_add(
        iteration
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What programs are made of: the generator, and whether `fail-prepare` is armed now and then
/// (for the zoo's prepare-failure bug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipe {
    pub generator: Drawn,
    pub fail_prepare: bool,
    /// The limits of the lockstep the programs are for (its user and private ids).
    pub arch: crate::ArchProfile,
}

impl Recipe {
    /// This process's recipe ([`zoo::generator`], [`zoo::selected`]).
    pub fn selected() -> Recipe {
        Recipe::for_lockstep(&zoo::selected(), zoo::generator())
    }

    pub fn for_lockstep(lockstep: &zoo::Lockstep, generator: Drawn) -> Recipe {
        Recipe {
            generator,
            fail_prepare: lockstep.allows_fail_prepare(),
            arch: lockstep.arch(),
        }
    }
}

/// The program of one seed with this process's recipe; `kind` forces its kind (else the seed
/// picks one).
pub fn program(seed: u64, kind: Option<Kind>) -> Vec<crate::Op> {
    program_with(Recipe::selected(), seed, kind)
}

/// [`program`] with an explicit recipe.
pub fn program_with(recipe: Recipe, seed: u64, kind: Option<Kind>) -> Vec<crate::Op> {
    let mut src = RngSource(SmallRng::seed_from_u64(seed));
    let kind = kind.unwrap_or(match src.below(100) {
        0..=59 => Kind::Short,
        60..=91 => Kind::Realistic,
        _ => Kind::Long,
    });
    let steered = recipe.generator == Drawn::Steered;
    let weights = if steered {
        Weights::differential()
    } else {
        Drawn::random_weights()
    };
    let fail_prepare = recipe.fail_prepare;
    let mut g = Generator::with_arch(20_000, recipe.arch);
    // Its own stream: the program's intents are those of the seed without REGION2.
    g.region2 = Some(seed ^ 0x5245_4749_4f4e_3200);
    let random = |g: &mut Generator, src: &mut RngSource<SmallRng>, n: u64| {
        for _ in 0..n {
            if fail_prepare && src.chance(16) {
                let errno = if src.chance(128) { -12 } else { 0 };
                g.emit(Op::FailPrepare { errno });
            }
            let intent = weights.pick(src.below(u64::from(weights.total())) as u32);
            g.intent(intent, src);
        }
    };
    if !steered {
        // The baseline: as many operations as the steered kinds make, none of them a layout.
        let n = match kind {
            Kind::Short => 1 + src.below(64),
            Kind::Realistic => 20 + src.below(64),
            Kind::Long => 500 + src.below(2500),
        };
        random(&mut g, &mut src, n);
        return g.into_ops();
    }
    match kind {
        Kind::Short => {
            let n = 1 + src.below(64);
            random(&mut g, &mut src, n);
        }
        Kind::Realistic | Kind::Long => {
            let first = if src.chance(96) {
                Script::MicroVm
            } else {
                Script::QemuPc
            };
            first.run(&mut g, &mut src);
            for _ in 0..src.below(3) {
                let next = Script::ALL[src.below(Script::ALL.len() as u64) as usize];
                next.run(&mut g, &mut src);
            }
            let n = if kind == Kind::Long {
                500 + src.below(2500)
            } else {
                src.below(64)
            };
            random(&mut g, &mut src, n);
            if kind == Kind::Long && src.chance(64) {
                g.intent(Intent::Fill, &mut src);
                random(&mut g, &mut src, 200);
            }
        }
    }
    g.into_ops()
}

/// The random update_memslots calls of one seed (for the `update-absent-id` bug).
pub fn update_calls(seed: u64) -> Vec<u8> {
    let mut src = RngSource(SmallRng::seed_from_u64(seed));
    let n = 1 + src.below(200) as usize;
    (0..n * 5).map(|_| src.below(256) as u8).collect()
}

/// How long to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub time: Option<Duration>,
    pub iters: Option<u64>,
    /// Where the failing scenario is written.
    pub out_dir: PathBuf,
    /// Which implementations to compare (the command line's `--zoo`).
    pub lockstep: zoo::Lockstep,
    /// Which generator draws the programs (`--generator`).
    pub generator: Drawn,
}

/// What a stress run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub iterations: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// The file holding the failing scenario, if the implementations diverged.
    pub failure: Option<PathBuf>,
}

/// Run until the time or iteration budget is spent or a divergence is found. Progress and the
/// report go to `out`.
pub fn stress(opts: &Options, out: &mut dyn Write) -> Outcome {
    stress_with_progress(opts, out, &mut |_, _| true)
}

/// [`stress`], offering a progress line about once a second to `progress` first, with the
/// run so far; it is printed to `out` only when `progress` returns true.
pub fn stress_with_progress(
    opts: &Options,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&Outcome, &str) -> bool,
) -> Outcome {
    let start = Instant::now();
    let mut outcome = Outcome::default();
    let mut last_print = start;
    let mut max_used = 0;
    let lockstep = opts.lockstep;
    let recipe = Recipe::for_lockstep(&lockstep, opts.generator);
    let update_target =
        matches!(lockstep, zoo::Lockstep::Zoo { bug, .. } if bug.target == "update");
    let _ = writeln!(
        out,
        "stress: seed {} ({}), comparing {}{}",
        opts.seed,
        budget_text(opts),
        match lockstep.port() {
            Some(port) if update_target => format!("core and {port} through update_memslots"),
            _ => lockstep
                .implementations()
                .iter()
                .map(|imp| imp.name())
                .collect::<Vec<_>>()
                .join(", "),
        },
        if opts.generator == Drawn::Random {
            " (random generator)"
        } else {
            ""
        }
    );
    loop {
        let elapsed = start.elapsed();
        if opts.iters.is_some_and(|n| outcome.iterations >= n)
            || opts.time.is_some_and(|t| elapsed >= t)
        {
            break;
        }
        let seed = iteration_seed(opts.seed, outcome.iterations);
        if update_target {
            let data = update_calls(seed);
            let calls = crate::lowlevel::decode(&data);
            outcome.iterations += 1;
            outcome.ops += calls.len() as u64;
            let port = crate::lowlevel::port(&lockstep);
            if let Err(report) = crate::lowlevel::check(port, &calls) {
                let _ = std::fs::create_dir_all(&opts.out_dir);
                let file = opts.out_dir.join(format!(
                    "stress-{}-{}.update",
                    opts.seed,
                    outcome.iterations - 1
                ));
                let _ = std::fs::write(&file, &data);
                let _ = writeln!(
                    out,
                    "\n{report}input: {} (fuzz target `update`: cargo fuzz run update {})",
                    file.display(),
                    file.display()
                );
                outcome.failure = Some(file);
                break;
            }
        } else {
            let ops = program_with(recipe, seed, None);
            let result = Runner::new(lockstep.implementations(), RunOptions::default()).run(&ops);
            outcome.iterations += 1;
            outcome.ops += result.stats.steps as u64;
            max_used = max_used.max(result.stats.max_used);
            if let Some(d) = result.divergence {
                let _ = std::fs::create_dir_all(&opts.out_dir);
                let file = opts.out_dir.join(format!(
                    "stress-{}-{}.scenario",
                    opts.seed,
                    outcome.iterations - 1
                ));
                let text = format!(
                "# found by: memslot-diff stress --seed {} (iteration {}, program seed {seed:#x}: memslot-diff generate --seed {seed:#x})\n{}",
                opts.seed,
                outcome.iterations - 1,
                scenario::print_at(lockstep.arch(), &d.ops)
            );
                let written = std::fs::write(&file, text).is_ok();
                let ctx = Context {
                    target: Some("stress".to_string()),
                    input: None,
                    replay: written.then(|| {
                        Context::replay_command(&file.display().to_string(), None)
                            + &lockstep.replay_args()
                    }),
                    note: Some(format!(
                        "seed {} iteration {} (program seed {seed:#x})",
                        opts.seed,
                        outcome.iterations - 1
                    )),
                };
                let _ = write!(out, "\n{}", render(&d, &ctx));
                outcome.failure = Some(file);
                break;
            }
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let line = progress_line(&outcome, start.elapsed(), max_used);
            if progress(&outcome, &line) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    outcome.elapsed = start.elapsed();
    let _ = writeln!(
        out,
        "{}",
        progress_line(&outcome, outcome.elapsed, max_used)
    );
    if outcome.failure.is_none() {
        let _ = writeln!(
            out,
            "stress: all implementations agree ({} programs)",
            outcome.iterations
        );
    }
    outcome
}

fn budget_text(opts: &Options) -> String {
    match (opts.time, opts.iters) {
        (Some(t), Some(n)) => format!("up to {:.0?} or {n} programs", t),
        (Some(t), None) => format!("for {:.0?}", t),
        (None, Some(n)) => format!("{n} programs"),
        (None, None) => "until a divergence".to_string(),
    }
}

fn progress_line(o: &Outcome, elapsed: Duration, max_used: i64) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "[{:>7.1}s] {} programs, {} ops, {:.0} programs/s, {:.0} ops/s, most slots in one AS: {}",
        secs,
        o.iterations,
        o.ops,
        o.iterations as f64 / secs,
        o.ops as f64 / secs,
        max_used
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_deterministic_and_varied() {
        assert_eq!(program(42, None), program(42, None));
        assert_ne!(program(1, Some(Kind::Short)), program(2, Some(Kind::Short)));
        let long = program(3, Some(Kind::Long));
        assert!(long.len() >= 500, "{}", long.len());
        assert_ne!(iteration_seed(1, 0), iteration_seed(1, 1));
    }
}
