//! The commands over single inputs: `replay`, `fmt`, `encode`, `minimize`, `generate`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use memslot_harness::corpus::{self, Format, Loaded};
use memslot_harness::report::{render, Context};
use memslot_harness::runner::{RunOptions, Runner};
use memslot_harness::scenario;
use memslot_harness::stress;
use memslot_harness::targets::Target;
use memslot_harness::zoo::Lockstep;
use memslot_harness::ArchProfile;

use super::lockstep::{parse_duration, parse_number, parse_target, InputArgs, LockstepArgs};

/// Run scenario files or fuzz artifacts (detected per file) on every implementation and
/// print the divergence report, if any.
///
/// --zoo compares core, tree and oracle with that zoo bug's state (or, with --fixed, its
/// fixed state) instead of the standard set; --variant adds your own variant of a port to it
/// (built with MEMSLOT_VARIANT=STATE:DIR). --arch x86-32k runs at today's x86 limits (32,764
/// user slots: core, modern-32k, tree, oracle; the 2020 ports cannot): a scenario's 'arch'
/// line chooses it too.
#[derive(Args, Debug)]
pub struct Replay {
    /// Print every implementation's state after every step, as JSON
    #[arg(long)]
    json: bool,
    /// Print the '# expect:' line of each file
    #[arg(long)]
    summary: bool,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    lockstep: LockstepArgs,
    /// Scenario files, fuzz artifacts or directories of them
    #[arg(value_name = "FILE|DIR", required = true)]
    files: Vec<PathBuf>,
}

pub fn replay(a: Replay, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let (lockstep, _) = a.lockstep.lockstep().map_err(|e| format!("replay: {e}"))?;
    let json = a.json;
    let mut status = 0;
    let mut documents = Vec::new();
    for arg in &a.files {
        let files = match corpus::files(arg) {
            Ok(files) => files,
            Err(e) => {
                let _ = writeln!(err, "memslot-diff: {}: {e}", arg.display());
                status = 2;
                continue;
            }
        };
        for file in files {
            let shown = file.display().to_string();
            let loaded = match corpus::load(&file, a.input.target, a.input.format()) {
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
            if a.summary {
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

/// Print the scenario text of a fuzz input.
#[derive(Args, Debug)]
pub struct Fmt {
    /// How the artifact decodes: differential, lookups or requests (default: from the path)
    #[arg(long, value_name = "T", value_parser = parse_target)]
    target: Option<Target>,
    /// Read the file as scenario text (and print it normalized)
    #[arg(long)]
    text: bool,
    /// The fuzz artifact
    artifact: PathBuf,
}

pub fn fmt(a: Fmt, out: &mut dyn Write) -> Result<i32, String> {
    let path = a.artifact.as_path();
    let format = if a.text { Format::Text } else { Format::Bytes };
    let loaded = corpus::load(path, a.target, Some(format))?;
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

/// Write the byte form of a scenario (a fuzz input that decodes to the same program).
#[derive(Args, Debug)]
pub struct Encode {
    /// The fuzz target the bytes are for (default: from OUTPUT's path, else differential)
    #[arg(long, value_name = "T", value_parser = parse_target)]
    target: Option<Target>,
    /// The scenario file to encode
    scenario: PathBuf,
    /// Where to write the bytes
    output: PathBuf,
}

pub fn encode(a: Encode, out: &mut dyn Write) -> Result<i32, String> {
    let (input, output) = (a.scenario.as_path(), a.output.as_path());
    let loaded = corpus::load(input, None, Some(Format::Text))?;
    let target = a
        .target
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

/// Shrink a diverging scenario or fuzz artifact by whole operations while it diverges with
/// the same signature, and print the result as scenario text.
///
/// The search stops when no single operation can go, or after --time with the best so far.
#[derive(Args, Debug)]
pub struct Minimize {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    lockstep: LockstepArgs,
    /// Stop the search after this long (30s, 5m)
    #[arg(long, value_name = "T", value_parser = parse_duration, default_value = "60s")]
    time: Duration,
    /// The diverging scenario or artifact
    file: PathBuf,
}

pub fn minimize(a: Minimize, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let (lockstep, _) = a
        .lockstep
        .lockstep()
        .map_err(|e| format!("minimize: {e}"))?;
    let budget = a.time;
    let path = a.file.as_path();
    let loaded = corpus::load(path, a.input.target, a.input.format())?;
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

/// Print the program the stress generator builds from a seed.
#[derive(Args, Debug)]
pub struct Generate {
    /// The program seed
    #[arg(long, value_name = "S", value_parser = parse_number)]
    seed: u64,
    /// short, realistic or long (default: chosen by the seed)
    #[arg(long)]
    kind: Option<String>,
}

pub fn generate(a: Generate, out: &mut dyn Write) -> Result<i32, String> {
    let seed = a.seed;
    let kind = a
        .kind
        .map(|k| {
            stress::Kind::from_name(&k)
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
