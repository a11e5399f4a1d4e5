//! eval's trials: the plan (every bug × engine × generator, seeds and directories) and the
//! fuzz binaries they need.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use memslot_harness::corpus;
use memslot_harness::zoo::{self, Generator, ZooBug};

use super::{generator_name, Engine, FuzzBuild, Options};

/// One trial to run.
#[derive(Clone, Debug)]
pub(super) struct TrialSpec {
    pub(super) bug: &'static ZooBug,
    pub(super) engine: Engine,
    pub(super) generator: Generator,
    pub(super) seed: u64,
    pub(super) cap: Duration,
    pub(super) dir: PathBuf,
}

/// One finished trial, as `results.json` records it.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub bug: &'static str,
    pub engine: &'static str,
    /// `steered` or `random` (the baseline).
    pub generator: &'static str,
    pub seed: u64,
    pub detected: bool,
    /// Wall clock of the trial's process.
    pub seconds: f64,
    /// Programs run (stress) or units executed (libFuzzer); `None` if libFuzzer printed none.
    pub executions: Option<u64>,
    /// The trial's budget: an undetected trial is censored here.
    pub cap_seconds: f64,
    /// Its logs and artifacts.
    pub dir: String,
}

/// The trials of every bug × engine × generator, steered first, then the baseline. Seeds are
/// `1000 * (trial + 1) + bug index`: distinct per trial, reproducible, never 0 (libFuzzer's
/// "pick a seed for me").
pub(super) fn plan(options: &Options) -> Vec<TrialSpec> {
    let mut specs = Vec::new();
    let passes = [
        (Generator::Steered, options.trials, options.cap),
        (
            Generator::Random,
            options.baseline_trials,
            options.baseline_cap,
        ),
    ];
    for (generator, trials, cap) in passes {
        for bug in &options.bugs {
            let bug_index = zoo::BUGS
                .iter()
                .position(|b| b.name == bug.name)
                .unwrap_or(0);
            for &engine in &options.engines {
                for trial in 0..trials {
                    let seed = 1000 * (trial + 1) + bug_index as u64;
                    let dir = options
                        .out_dir
                        .join("trials")
                        .join(bug.name)
                        .join(engine.name())
                        .join(generator_name(generator))
                        .join(format!("seed-{seed}"));
                    specs.push(TrialSpec {
                        bug,
                        engine,
                        generator,
                        seed,
                        cap,
                        dir,
                    });
                }
            }
        }
    }
    specs
}

/// The option that points eval at a build's binaries.
fn bin_dir_option(build: FuzzBuild) -> &'static str {
    match build {
        FuzzBuild::Shipped => "--fuzz-bin-dir",
        FuzzBuild::Asan => "--asan-bin-dir",
    }
}

/// Where cargo-fuzz leaves a build's binaries: the workspace's target directory (or
/// `$CARGO_TARGET_DIR`), else the fuzz crate's own (when built outside the workspace).
fn default_dirs(build: FuzzBuild) -> Vec<PathBuf> {
    let root = corpus::root();
    let mut dirs = Vec::new();
    if build == FuzzBuild::Shipped {
        if let Some(target_dir) = std::env::var_os("CARGO_TARGET_DIR") {
            dirs.push(
                PathBuf::from(target_dir)
                    .join(crate::fuzz_build::host_triple())
                    .join("release"),
            );
        }
    }
    dirs.push(build.bin_dir(&root));
    if build == FuzzBuild::Shipped {
        dirs.push(build.bin_dir(&root.join("fuzz")));
    }
    dirs
}

/// The fuzz binary of every target the selected bugs need, per libFuzzer engine, or an error
/// naming the build command.
pub(super) fn find_fuzz_binaries(
    options: &Options,
) -> Result<BTreeMap<(Engine, &'static str), PathBuf>, String> {
    let mut targets: Vec<&'static str> = options.bugs.iter().map(|b| b.target).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut found = BTreeMap::new();
    for &engine in &options.engines {
        let Some(build) = engine.fuzz_build() else {
            continue;
        };
        let chosen = match build {
            FuzzBuild::Shipped => &options.fuzz_bin_dir,
            FuzzBuild::Asan => &options.asan_bin_dir,
        };
        let candidates = match chosen {
            Some(dir) => vec![dir.clone()],
            None => default_dirs(build),
        };
        let mut missing = Vec::new();
        for target in &targets {
            match candidates
                .iter()
                .map(|dir| dir.join(target))
                .find(|path| path.is_file())
            {
                Some(path) => {
                    if !build.matches(&path)? {
                        return Err(format!(
                            "eval: {} is not {} that engine {} measures. Rebuild it from the \
                             repository root with\n    {}\nor point {} at that build.",
                            path.display(),
                            build.describe(),
                            engine.name(),
                            build.build_command(target),
                            bin_dir_option(build),
                        ));
                    }
                    found.insert((engine, *target), path);
                }
                None => missing.push(*target),
            }
        }
        if !missing.is_empty() {
            let searched: Vec<String> =
                candidates.iter().map(|d| d.display().to_string()).collect();
            return Err(format!(
                "eval: engine {} needs the fuzz binaries {} of {} (looked in {}).\n\
                 Build them from the repository root with\n    {}\n\
                 (or RUSTC_BOOTSTRAP=1 cargo fuzz build ...; `cargo install cargo-fuzz` and a \
                 clang are needed), point {} at them, or measure only --engines stress.",
                engine.name(),
                missing.join(", "),
                build.describe(),
                searched.join(", "),
                build.build_command(&missing.join(" ")),
                bin_dir_option(build),
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn plan_gives_distinct_seeds_and_fresh_directories() {
        let args: Vec<String> = "--bugs stale-lru,below-lowest --engines stress --trials 3 \
                                 --baseline-trials 2 --out /tmp/x"
            .split(' ')
            .map(String::from)
            .collect();
        let specs = plan(&parse(&args));
        assert_eq!(specs.len(), 2 * 3 + 2 * 2);
        let mut dirs: Vec<&PathBuf> = specs.iter().map(|s| &s.dir).collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), specs.len());
        let stale: Vec<u64> = specs
            .iter()
            .filter(|s| s.bug.name == "stale-lru" && s.generator == Generator::Steered)
            .map(|s| s.seed)
            .collect();
        assert_eq!(stale, vec![1000, 2000, 3000]);
    }

    #[test]
    fn a_binary_of_the_other_build_is_refused() {
        let dir = std::env::temp_dir().join(format!("memslot-diff-eval-{}", std::process::id()));
        let (asan, plain) = (dir.join("asan"), dir.join("plain"));
        for (d, content) in [(&asan, &b"ELF..__asan_init\0.."[..]), (&plain, b"ELF....")] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("differential"), content).unwrap();
        }
        let run = |args: String| {
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = crate::cli::run_with(&args, &mut out, &mut err);
            (code, String::from_utf8(err).unwrap())
        };
        let (code, err) = run(format!(
            "eval --engines libfuzzer --fuzz-bin-dir {} --bugs stale-lru",
            asan.display()
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("is not the shipped build"), "{err}");
        let (code, err) = run(format!(
            "eval --engines libfuzzer-asan --asan-bin-dir {} --bugs stale-lru",
            plain.display()
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("is not the AddressSanitizer build"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
