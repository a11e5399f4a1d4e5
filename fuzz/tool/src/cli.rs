//! The `memslot-diff` command line tool (`cargo memslot-diff ...`).
//!
//! ```text
//! memslot-diff replay [--json] [--summary] [--target T] [--text|--bytes] [--zoo BUG [--fixed] | --variant | --arch A] FILE|DIR...
//! memslot-diff fmt [--target T] ARTIFACT
//! memslot-diff encode [--target T] SCENARIO OUTPUT
//! memslot-diff minimize [--target T] [--text|--bytes] [--zoo BUG [--fixed] | --variant | --arch A] [--time T] FILE
//! memslot-diff generate --seed S [--kind short|realistic|long]
//! memslot-diff stress [--seed S] (--time T | --iters N) [--out DIR] [--zoo BUG [--fixed] | --variant | --arch A]
//!                     [--generator steered|random] [--json]
//! memslot-diff seed-corpus [--corpus DIR] [--out DIR]
//! memslot-diff throughput [--targets a,b,...] [--time T] [--write-inputs DIR] [--json FILE]
//! memslot-diff eval [--bugs a,b,...] [--engines stress,libfuzzer] [--trials N] [--cap T]
//!                   [--baseline-trials N] [--baseline-cap T] [--jobs N] [--out DIR]
//!                   [--fuzz-bin-dir DIR]
//! memslot-diff mutants [--engine stress|libfuzzer] [--time T] [--jobs N] [--seed S] [--sample N] [--only TEXT]
//!                      [--keys FILE] [--out DIR] [--list] [--bin FILE]
//! ```
//!
//! Exit status: 0 when every implementation agrees (or the command succeeded), 1 on a
//! divergence, 2 on bad input or usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use memslot_harness::corpus::{self, Format, Loaded};
use memslot_harness::report::{render, Context};
use memslot_harness::runner::{RunOptions, Runner};
use memslot_harness::scenario;
use memslot_harness::stress;
use memslot_harness::targets::Target;
use memslot_harness::zoo::{Generator, Lockstep};
use memslot_harness::ArchProfile;

const USAGE: &str = "\
usage: memslot-diff <command> [options]

commands:
  replay [--json] [--summary] [--target T] [--text|--bytes]
         [--zoo BUG [--fixed] | --variant | --arch A] FILE|DIR...
        Run scenario files or fuzz artifacts (detected per file) on every implementation
        and print the divergence report, if any. --zoo compares core, tree and oracle with
        that zoo bug's state (or, with --fixed, its fixed state) instead of the standard set;
        --variant adds your own variant of a port to it (built with MEMSLOT_VARIANT=STATE:DIR).
        --arch x86-32k runs at today's x86 limits (32,764 user slots: core, modern-32k, tree,
        oracle; the 2020 ports cannot): a scenario's 'arch' line chooses it too.
        --json prints every implementation's state after every step. --summary prints the '# expect:' line of each file. --target
        (differential, lookups, requests) chooses how artifacts decode; by default it is taken
        from the path (corpus/<target>/... or artifacts/<target>/...), else differential.
  fmt [--target T] ARTIFACT
        Print the scenario text of a fuzz input.
  encode [--target T] SCENARIO OUTPUT
        Write the byte form of a scenario (a fuzz input that decodes to the same program).
  minimize [--target T] [--text|--bytes] [--zoo BUG [--fixed] | --variant | --arch A]
           [--time T] FILE
        Shrink a diverging scenario or fuzz artifact by whole operations while it diverges
        with the same signature, and print the result as scenario text. The search stops
        when no single operation can go, or after T (default 60s) with the best so far.
  generate --seed S [--kind short|realistic|long]
        Print the program the stress generator builds from a seed.
  stress [--seed S] (--time T | --iters N) [--out DIR]
         [--zoo BUG [--fixed] | --variant | --arch A] [--generator steered|random] [--json]
        Generate and check programs without libFuzzer until the budget is spent (T: 30s,
        5m, 1h) or the implementations diverge; the failing scenario is written to DIR
        (default: target/memslot-diff/). --zoo runs a zoo bug's state (--fixed: its fixed
        state); --arch x86-32k generates and runs at today's x86 limits; --generator random
        draws the eval baseline's programs; --json ends with one line of JSON: detected,
        seconds, programs, ops.
  seed-corpus [--corpus DIR] [--out DIR]
        Convert corpus/<target>/{seeds,regressions} to libFuzzer inputs in
        fuzz/corpus/<target>/ (what `cargo fuzz run <target>` starts from).
  throughput [--targets a,b,...] [--time T] [--write-inputs DIR] [--json FILE]
        The harness's speed in this build: executions per second of each fuzz target over
        its fixed input set (its seeds and regressions, and 256 inputs generated from seed 1),
        T per set (default 3s), and the share of time spent in generation, in each
        implementation and in comparison. --write-inputs writes the fixed sets to
        DIR/<target>/ and measures nothing (ci/throughput runs the cargo-fuzz build on them).
  eval [--bugs a,b,...] [--engines stress,libfuzzer] [--trials N] [--cap T]
       [--baseline-trials N] [--baseline-cap T] [--jobs N] [--out DIR] [--fuzz-bin-dir DIR]
        Measure how fast each engine finds each zoo bug: N independent trials per bug and
        engine from an empty corpus (default: all bugs, both engines, 10 trials, cap 60s, jobs
        2), then the same with the random baseline generator (--baseline-trials 0 skips it).
        Writes results.json, table.md and survival.svg to DIR (default:
        target/memslot-diff/eval) and prints the table. The libfuzzer engine runs the
        binaries of `cargo +nightly fuzz build` (or those in --fuzz-bin-dir).

  mutants [--engine stress|libfuzzer] [--time T] [--jobs N] [--seed S] [--sample N]
          [--only TEXT] [--keys FILE] [--out DIR] [--list] [--bin FILE]
        The mutation score: mutate the four C ports of the standard set (relational,
        logical, arithmetic, off-by-one, increment, negate, drop), build them all into one
        memslot-diff (the mutant schemata; target/mutants), run the stress engine on each
        mutant for T (default 60s; --jobs 2; --engine libfuzzer: the shipped differential
        fuzz binary, built into target/mutants-fuzz) and report killed, survived, timed out or
        crashed, with reference/c/mutants-equivalent.txt counted apart. --list prints the
        mutants and runs nothing; --only, --sample N (evenly spaced) and --keys FILE (one
        key per line) choose some. Writes results.json and table.md to DIR (default
        target/memslot-diff/mutants). Exit 1 when a mutant survived.

zoo bugs (--zoo; MEMSLOT_DIFF_ZOO=BUG[:fixed] for the fuzz targets): stale-lru, empty-array,
  below-lowest, below-lowest-full, prepare-invalid, update-absent-id.
arch profiles (--arch; MEMSLOT_DIFF_ARCH for the fuzz targets): x86-512 (the default: 509 user
  + 3 private slots, v5.6-v5.11), x86-32k (32,764 + 3, v5.12 onward).

exit status: 0 all implementations agree, 1 divergence, 2 bad input or usage";

/// Run the command with `args` (without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with explicit output streams (for tests).
pub fn run_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        let _ = writeln!(err, "{USAGE}");
        return 2;
    };
    let result = match command.as_str() {
        "replay" => replay(rest, out, err),
        "fmt" => fmt(rest, out),
        "encode" => encode(rest, out),
        "minimize" => minimize(rest, out, err),
        "generate" => generate(rest, out),
        "stress" => stress_command(rest, out),
        "seed-corpus" => seed_corpus(rest, out),
        "throughput" => throughput(rest, out),
        "eval" => crate::eval::command(rest, out),
        "mutants" => crate::mutants::command(rest, out),
        "help" | "-h" | "--help" => {
            let _ = writeln!(out, "{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "memslot-diff: {message}");
            2
        }
    }
}

/// Parsed options: flags, `--key value` options, and positional arguments.
struct Args {
    command: &'static str,
    flags: Vec<String>,
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Args {
    fn parse(
        command: &'static str,
        args: &[String],
        flags: &[&str],
        valued: &[&str],
    ) -> Result<Args, String> {
        let mut parsed = Args {
            command,
            flags: Vec::new(),
            values: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if flags.contains(&name) && inline.is_none() {
                    parsed.flags.push(name.to_string());
                } else if valued.contains(&name) {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| format!("{command}: option --{name} needs a value"))?,
                    };
                    if parsed.value(name).is_some() {
                        return Err(format!("{command}: option --{name} given twice"));
                    }
                    parsed.values.push((name.to_string(), value));
                } else {
                    return Err(format!(
                        "{command}: unknown option '{arg}' (try memslot-diff help)"
                    ));
                }
            } else if arg.starts_with('-') && arg.len() > 1 {
                return Err(format!(
                    "{command}: unknown option '{arg}' (try memslot-diff help)"
                ));
            } else {
                parsed.positional.push(arg.clone());
            }
        }
        Ok(parsed)
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn target(&self) -> Result<Option<Target>, String> {
        self.value("target")
            .map(|t| {
                Target::from_name(t).ok_or_else(|| {
                    format!(
                        "{}: unknown target '{t}' (expected differential, lookups or requests)",
                        self.command
                    )
                })
            })
            .transpose()
    }

    fn number(&self, name: &str) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|v| {
                scenario::parse_u64(v, false).map_err(|why| {
                    format!("{}: bad number '{v}' for --{name}: {why}", self.command)
                })
            })
            .transpose()
    }

    /// `--zoo BUG [--fixed]` and `--generator G`: the implementations to compare and the
    /// generator to draw programs with (default: `MEMSLOT_DIFF_ZOO` and
    /// `MEMSLOT_DIFF_GENERATOR`, else the standard set and the steered generator). Fuzz
    /// artifacts are decoded as the environment says, as the fuzzer that wrote them did.
    fn lockstep(&self) -> Result<(Lockstep, Generator), String> {
        let command = self.command;
        let arch = self
            .value("arch")
            .map(|name| ArchProfile::parse(name).map_err(|e| format!("{command}: --arch: {e}")))
            .transpose()?;
        if arch.is_some() && (self.value("zoo").is_some() || self.flag("variant")) {
            return Err(format!(
                "{command}: --arch with --zoo or --variant: those locksteps have their own \
                 profile (a variant of modern_32k runs at x86-32k)"
            ));
        }
        let lockstep = match self.value("zoo") {
            Some(name) => {
                let bug = memslot_harness::zoo::bug(name).ok_or_else(|| {
                    format!(
                        "{command}: unknown zoo bug '{name}' (known: {})",
                        memslot_harness::zoo::bug_names()
                    )
                })?;
                if self.flag("variant") {
                    return Err(format!("{command}: give --zoo or --variant, not both"));
                }
                Lockstep::Zoo {
                    bug,
                    fixed: self.flag("fixed"),
                }
            }
            None if self.flag("fixed") => {
                return Err(format!("{command}: --fixed needs --zoo BUG"))
            }
            None if self.flag("variant") => {
                Lockstep::with_variant().map_err(|e| format!("{command}: --variant: {e}"))?
            }
            None => match arch {
                Some(arch) => Lockstep::at(arch),
                None => Lockstep::from_env().map_err(|e| format!("{command}: {e}"))?,
            },
        };
        let generator = match self.value("generator") {
            Some(name) => Generator::parse(name).map_err(|e| format!("{command}: {e}"))?,
            None => Generator::from_env().map_err(|e| format!("{command}: {e}"))?,
        };
        Ok((lockstep, generator))
    }

    fn exactly(&self, n: usize, what: &str) -> Result<(), String> {
        if self.positional.len() != n {
            return Err(format!("{}: expected {what}", self.command));
        }
        Ok(())
    }
}

fn replay(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse(
        "replay",
        args,
        &["json", "summary", "text", "bytes", "fixed", "variant"],
        &["target", "zoo", "generator", "arch"],
    )?;
    let (lockstep, _) = a.lockstep()?;
    if a.positional.is_empty() {
        return Err("replay: expected FILE or DIR arguments".to_string());
    }
    let target = a.target()?;
    let format = match (a.flag("text"), a.flag("bytes")) {
        (true, true) => return Err("replay: give --text or --bytes, not both".to_string()),
        (true, false) => Some(Format::Text),
        (false, true) => Some(Format::Bytes),
        (false, false) => None,
    };
    let json = a.flag("json");
    let mut status = 0;
    let mut documents = Vec::new();
    for arg in &a.positional {
        let files = match corpus::files(Path::new(arg)) {
            Ok(files) => files,
            Err(e) => {
                let _ = writeln!(err, "memslot-diff: {arg}: {e}");
                status = 2;
                continue;
            }
        };
        for file in files {
            let shown = file.display().to_string();
            let loaded = match corpus::load(&file, target, format) {
                Ok(l) => l,
                Err(e) => {
                    let _ = writeln!(err, "memslot-diff: {e}");
                    status = 2;
                    continue;
                }
            };
            for note in &loaded.notes {
                let _ = writeln!(err, "note: {note}");
            }
            let lockstep = match lockstep_for(lockstep, &loaded, &file) {
                Ok(l) => l,
                Err(e) => {
                    let _ = writeln!(err, "memslot-diff: {e}");
                    status = 2;
                    continue;
                }
            };
            let opts = RunOptions {
                record: json,
                ..RunOptions::default()
            };
            let result = Runner::new(lockstep.implementations(), opts).run(&loaded.ops);
            let agreed = result.agreed();
            if !agreed && status == 0 {
                status = 1;
            }
            if json {
                documents.push(serde_json::json!({
                    "file": shown,
                    "format": match loaded.format { Format::Text => "scenario", Format::Bytes => "artifact" },
                    "target": loaded.target.map(Target::name),
                    "agree": agreed,
                    "divergence": result.divergence.as_ref().map(|d| serde_json::json!({
                        "step": d.step, "op": d.op.to_string(), "aspect": d.aspect,
                        "details": d.details, "also": d.also,
                        "signature": memslot_harness::report::signature(d),
                        "disagreeing": memslot_harness::report::disagreeing(d),
                    })),
                    "stats": result.stats,
                    "steps": result.trace,
                }));
                continue;
            }
            match &result.divergence {
                Some(d) => {
                    let _ = write!(out, "{}", render(d, &context(&file, &loaded, &lockstep)));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{shown}: all implementations agree ({} steps, {} probes)",
                        result.stats.steps, result.stats.probes
                    );
                }
            }
            if a.flag("summary") {
                let _ = writeln!(out, "# expect: {}", result.stats.summary());
            }
        }
    }
    if json {
        let value = if documents.len() == 1 {
            documents.remove(0)
        } else {
            serde_json::Value::Array(documents)
        };
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    }
    Ok(status)
}

/// The lockstep a loaded program runs on: the command's; or, when the command chose none (the
/// standard set) and the program is for another profile (its `arch` line), that profile's.
/// An x86-512 program runs at x86-32k when `--arch x86-32k` asks (its ids are valid there).
fn lockstep_for(lockstep: Lockstep, loaded: &Loaded, file: &Path) -> Result<Lockstep, String> {
    match lockstep {
        _ if lockstep.arch() == loaded.arch => Ok(lockstep),
        Lockstep::Standard => Ok(Lockstep::at(loaded.arch)),
        Lockstep::X86_32k => Ok(lockstep),
        _ => Err(format!(
            "{}: the program is for arch {}, and this lockstep runs at {} (drop --zoo or \
             --variant, or the arch line)",
            file.display(),
            loaded.arch.name(),
            lockstep.arch().name()
        )),
    }
}

fn context(file: &Path, loaded: &Loaded, lockstep: &Lockstep) -> Context {
    let shown = file.display().to_string();
    let target = loaded.target.map(Target::name);
    let explicit = match loaded.target {
        Some(t) if Target::infer(file) != Some(t) => Some(t.name()),
        _ => None,
    };
    Context {
        target: Some(match target {
            Some(t) => format!("{t} (fuzz artifact decoded as this target; `memslot-diff fmt` prints it as a scenario)"),
            None => "scenario text".to_string(),
        }),
        input: Some(shown.clone()),
        replay: Some(Context::replay_command(&shown, explicit) + &lockstep.replay_args()),
        note: loaded.notes.first().cloned(),
    }
}

fn fmt(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse("fmt", args, &["text", "bytes"], &["target"])?;
    a.exactly(1, "one ARTIFACT argument")?;
    let path = Path::new(&a.positional[0]);
    let format = if a.flag("text") {
        Some(Format::Text)
    } else {
        Some(Format::Bytes)
    };
    let loaded = corpus::load(path, a.target()?, format)?;
    let target = loaded.target.map_or("scenario", Target::name);
    let _ = writeln!(
        out,
        "# {} decoded as fuzz target `{target}`: {} operations",
        path.display(),
        loaded.ops.len()
    );
    for note in &loaded.notes {
        let _ = writeln!(out, "# note: {note}");
    }
    let _ = write!(out, "{}", scenario::print_at(loaded.arch, &loaded.ops));
    Ok(0)
}

fn encode(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse("encode", args, &[], &["target"])?;
    a.exactly(2, "SCENARIO and OUTPUT arguments")?;
    let (input, output) = (Path::new(&a.positional[0]), Path::new(&a.positional[1]));
    let loaded = corpus::load(input, None, Some(Format::Text))?;
    let target = a
        .target()?
        .or_else(|| Target::infer(output))
        .unwrap_or(Target::Differential);
    let bytes =
        corpus::to_bytes(&loaded.ops, target).map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::write(output, &bytes).map_err(|e| format!("{}: {e}", output.display()))?;
    let _ = writeln!(
        out,
        "{}: {} operations, {} bytes",
        output.display(),
        loaded.ops.len(),
        bytes.len()
    );
    if loaded.arch != ArchProfile::default() {
        let arch = loaded.arch.name();
        let _ = writeln!(
            out,
            "note: bytes carry no arch line: replay them with --arch {arch}, fuzz with \
             MEMSLOT_DIFF_ARCH={arch}"
        );
    }
    Ok(0)
}

fn minimize(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse(
        "minimize",
        args,
        &["text", "bytes", "fixed", "variant"],
        &["target", "zoo", "time", "arch"],
    )?;
    a.exactly(1, "one FILE argument")?;
    let (lockstep, _) = a.lockstep()?;
    let budget = match a.value("time") {
        Some(t) => parse_duration(t).map_err(|e| format!("minimize: --time: {e}"))?,
        None => Duration::from_secs(60),
    };
    let path = Path::new(&a.positional[0]);
    let format = match (a.flag("text"), a.flag("bytes")) {
        (true, true) => return Err("minimize: give --text or --bytes, not both".to_string()),
        (true, false) => Some(Format::Text),
        (false, true) => Some(Format::Bytes),
        (false, false) => None,
    };
    let loaded = corpus::load(path, a.target()?, format)?;
    let lockstep = lockstep_for(lockstep, &loaded, path)?;
    let deadline = std::time::Instant::now() + budget;
    let m = memslot_harness::minimize::minimize(&loaded.ops, deadline, |ops| {
        Runner::new(lockstep.implementations(), RunOptions::default())
            .run(ops)
            .divergence
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = writeln!(
        err,
        "{}: {} -> {} operations, signature {} ({} replays{})",
        path.display(),
        loaded.ops.len(),
        m.ops.len(),
        m.signature,
        m.runs,
        if m.complete {
            ""
        } else {
            "; stopped by --time, not one-minimal"
        }
    );
    let _ = writeln!(
        out,
        "# minimized by memslot-diff from {}: {} of {} operations, signature {}",
        path.display(),
        m.ops.len(),
        loaded.ops.len(),
        m.signature
    );
    let _ = write!(out, "{}", scenario::print_at(lockstep.arch(), &m.ops));
    Ok(0)
}

fn generate(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse("generate", args, &[], &["seed", "kind"])?;
    a.exactly(0, "no positional arguments")?;
    let seed = a.number("seed")?.ok_or("generate: --seed S is required")?;
    let kind = a
        .value("kind")
        .map(|k| {
            stress::Kind::from_name(k)
                .ok_or_else(|| format!("generate: unknown kind '{k}' (short, realistic, long)"))
        })
        .transpose()?;
    let ops = stress::program(seed, kind);
    let _ = writeln!(
        out,
        "# memslot-diff generate --seed {seed:#x}: {} operations",
        ops.len()
    );
    let _ = write!(out, "{}", scenario::print(&ops));
    Ok(0)
}

/// `30`, `30s`, `5m`, `1h`, `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration '{text}' (e.g. 30s, 5m, 1h)");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

fn stress_command(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse(
        "stress",
        args,
        &["fixed", "variant", "json"],
        &["seed", "time", "iters", "out", "zoo", "generator", "arch"],
    )?;
    a.exactly(0, "no positional arguments")?;
    let (lockstep, generator) = a.lockstep()?;
    let time = a
        .value("time")
        .map(|t| parse_duration(t).map_err(|e| format!("stress: {e}")))
        .transpose()?;
    let iters = a.number("iters")?;
    if time.is_none() && iters.is_none() {
        return Err("stress: give a budget: --time T (30s, 5m) or --iters N".to_string());
    }
    let seed = match a.number("seed")? {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let out_dir = a.value("out").map_or_else(
        || corpus::root().join("target").join("memslot-diff"),
        PathBuf::from,
    );
    let outcome = stress::stress(
        &stress::Options {
            seed,
            time,
            iters,
            out_dir,
            lockstep,
            generator,
        },
        out,
    );
    if a.flag("json") {
        let line = serde_json::json!({
            "detected": outcome.failure.is_some(),
            "seconds": outcome.elapsed.as_secs_f64(),
            "programs": outcome.iterations,
            "ops": outcome.ops,
            "seed": seed,
        });
        let _ = writeln!(out, "{line}");
    }
    Ok(if outcome.failure.is_some() { 1 } else { 0 })
}

fn seed_corpus(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let a = Args::parse("seed-corpus", args, &[], &["corpus", "out"])?;
    a.exactly(0, "no positional arguments")?;
    let corpus_dir = a
        .value("corpus")
        .map_or_else(|| corpus::root().join("corpus"), PathBuf::from);
    let out_dir = a
        .value("out")
        .map_or_else(|| corpus::root().join("fuzz").join("corpus"), PathBuf::from);
    let mut written = 0;
    for target in corpus::FUZZ_TARGETS {
        let inputs = corpus::fuzz_inputs(&corpus_dir, target)?;
        for skipped in &inputs.skipped {
            let _ = writeln!(out, "seed-corpus: skipped {skipped}");
        }
        let dest = out_dir.join(target);
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        for (name, bytes) in &inputs.inputs {
            let name = dest.join(name);
            std::fs::write(&name, bytes).map_err(|e| format!("{}: {e}", name.display()))?;
            written += 1;
        }
    }
    let _ = writeln!(
        out,
        "seed-corpus: wrote {written} inputs under {}",
        out_dir.display()
    );
    Ok(0)
}

fn throughput(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    use crate::throughput::{executions_per_second, fixed_inputs};
    use memslot_harness::profile::Profile;
    let a = Args::parse(
        "throughput",
        args,
        &[],
        &["targets", "time", "write-inputs", "json"],
    )?;
    a.exactly(0, "no positional arguments")?;
    let targets: Vec<&str> = match a.value("targets") {
        None => corpus::FUZZ_TARGETS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|name| {
                corpus::FUZZ_TARGETS
                    .into_iter()
                    .find(|t| *t == name)
                    .ok_or_else(|| {
                        format!(
                            "throughput: unknown target '{name}' (known: {})",
                            corpus::FUZZ_TARGETS.join(", ")
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(dir) = a.value("write-inputs") {
        for target in &targets {
            let dest = Path::new(dir).join(target);
            std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            let inputs = fixed_inputs(target)?;
            for (name, bytes) in &inputs {
                let file = dest.join(name);
                std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            let _ = writeln!(out, "{}: {} inputs", dest.display(), inputs.len());
        }
        return Ok(0);
    }
    let budget = match a.value("time") {
        Some(t) => parse_duration(t).map_err(|e| format!("throughput: --time: {e}"))?,
        None => Duration::from_secs(3),
    };
    let _ = writeln!(
        out,
        "{:<13} {:<10} {:>6} {:>10} {:>12}",
        "target", "set", "inputs", "execs/s", "ops/s"
    );
    let mut results = Vec::new();
    for target in &targets {
        let inputs = fixed_inputs(target)?;
        let split = inputs.len() - crate::throughput::GENERATED;
        let mut profile = Profile::default();
        for (set, part) in [("seeds", &inputs[..split]), ("generated", &inputs[split..])] {
            if part.is_empty() {
                continue;
            }
            let execs = executions_per_second(target, part, budget);
            // Operations per input, from the profiled pass (scenario targets only).
            let mut ops_per_input = None;
            if let Some(t) = Target::from_name(target) {
                let mut part_profile = Profile::default();
                for (_, bytes) in part {
                    part_profile.record(t, bytes);
                }
                ops_per_input =
                    Some(part_profile.operations as f64 / part_profile.executions as f64);
                profile.add(&part_profile);
            }
            let _ = writeln!(
                out,
                "{:<13} {:<10} {:>6} {:>10.0} {:>12}",
                target,
                set,
                part.len(),
                execs,
                ops_per_input.map_or("-".to_string(), |o| format!("{:.0}", o * execs))
            );
            results.push(serde_json::json!({
                "target": target, "set": set, "inputs": part.len(),
                "executions_per_second": execs,
                "operations_per_second": ops_per_input.map(|o| o * execs),
            }));
        }
        if profile.executions > 0 {
            let shares: Vec<String> = profile
                .shares()
                .iter()
                .map(|(part, share)| format!("{part} {:.1}%", share * 100.0))
                .collect();
            let _ = writeln!(out, "  {target}: time per part: {}", shares.join(", "));
            results.push(serde_json::json!({ "target": target, "profile": profile }));
        }
    }
    if let Some(file) = a.value("json") {
        let text = serde_json::to_string_pretty(&results).unwrap_or_default();
        std::fs::write(file, text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn usage_errors_exit_2() {
        let run = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run_with(&args, &mut out, &mut err);
            (code, String::from_utf8(err).unwrap())
        };
        assert_eq!(run(&[]).0, 2);
        let (code, err) = run(&["replay", "--frobnicate", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("unknown option '--frobnicate'"), "{err}");
        let (code, err) = run(&["replay", "--target", "nope", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("unknown target 'nope'"), "{err}");
        let (code, err) = run(&["stress", "--seed", "1"]);
        assert_eq!(code, 2);
        assert!(err.contains("budget"), "{err}");
        let (code, err) = run(&["replay", "/nonexistent/file.scenario"]);
        assert_eq!(code, 2);
        assert!(err.contains("/nonexistent/file.scenario"), "{err}");
        assert_eq!(run(&["bogus"]).0, 2);
    }
}
