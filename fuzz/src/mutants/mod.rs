//! `memslot-diff mutants`: the harness's mutation score on the C ports.
//!
//! A quiet run is worth the bugs it would have reported. This generates mutants of the three
//! ports of the standard set ([`c`]), builds them all into one `memslot-diff` (the mutant
//! schemata, `MEMSLOT_MUTANT_SOURCES`; target dir `target/mutants`), then runs the stress
//! engine on each (`MEMSLOT_MUTANT=<id> memslot-diff stress --seed S --time T`, a process of
//! its own) and records whether the harness reports it: killed (with the signature, the
//! step and how long it took), survived, timed out (a hang: the mutant loops), or crashed.
//! Mutants judged equivalent, each with its argument, are listed in
//! `reference/c/mutants-equivalent.txt` and counted apart.

pub mod c;
pub mod patches;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use c::Mutant;

/// The ports the standard set runs, each with the state file it runs (whose defines decide
/// which preprocessor branches are mutated).
pub const PORTS: [(&str, &str); 3] = [
    ("pre", "states/pre_fixed.c"),
    ("post", "states/post_fixed.c"),
    ("post15", "states/post15.c"),
];
/// The files of a port that are mutated.
pub const FILES: [&str; 2] = ["kvm_host.h", "kvm_main.c"];
/// Functions not mutated: the arch hooks (`kvm_arch_*`, the ports' stand-ins for arch code,
/// no memslot logic) and the VM's set-up and tear-down (what happens after the last
/// comparison of a run is never compared).
pub fn in_scope(function: &str) -> bool {
    !function.starts_with("kvm_arch_")
        && !matches!(
            function,
            "kvm_create_vm" | "kvm_destroy_vm" | "kvm_free_memslots"
        )
}
/// Relative to `reference/c/`.
pub const EQUIVALENT_LIST: &str = "mutants-equivalent.txt";

/// `reference/c/` of this checkout.
pub fn sources_dir() -> PathBuf {
    crate::corpus::root().join("reference").join("c")
}

/// Files to write: `(path under the schemata dir, text)`.
pub type Schemata = Vec<(PathBuf, String)>;

/// Every mutant of the standard ports, and their schemata.
pub fn generate(c_dir: &Path) -> Result<(Vec<Mutant>, Schemata), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let shim_defines = defines(&read(&c_dir.join("shim/kernel.h"))?);
    let mut mutants = Vec::new();
    let mut files = Vec::new();
    for (port, state) in PORTS {
        let mut defined = defines(&read(&c_dir.join(state))?);
        defined.extend(shim_defines.iter().cloned());
        for file in FILES {
            let rel = format!("{port}/{file}");
            let source = read(&c_dir.join(&rel))?;
            let mutated = c::mutate(&source, &rel, &defined, &in_scope, mutants.len());
            mutants.extend(mutated.mutants);
            let mut schemata = mutated.schemata;
            if file == "kvm_host.h" {
                // On the first line, so that no line moves.
                schemata.insert_str(0, c::HELPER);
            }
            files.push((PathBuf::from(rel), schemata));
        }
    }
    Ok((mutants, files))
}

/// The macros `#define`d in a source (names only).
fn defines(source: &str) -> HashSet<String> {
    source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.split('(').next().unwrap_or(name).to_string())
        .collect()
}

/// The equivalent mutants: `key | argument` lines (`#` comments), keyed by [`Mutant::key`].
pub fn equivalents(text: &str, file: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, why)) = line.rsplit_once(" | ") else {
            return Err(format!(
                "{file}:{}: expected `<mutant key> | <why it is equivalent>`",
                n + 1
            ));
        };
        if why.trim().is_empty() {
            return Err(format!("{file}:{}: the argument is missing", n + 1));
        }
        map.insert(key.trim().to_string(), why.trim().to_string());
    }
    Ok(map)
}

/// What happened to one mutant.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Killed,
    Survived,
    TimedOut,
    Crashed,
    Equivalent,
    /// A patch mutant that did not build (its log is named in `detail`).
    BuildFailed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: usize,
    pub key: String,
    pub file: String,
    pub function: String,
    pub line: usize,
    pub operator: &'static str,
    pub original: String,
    pub replacement: String,
    pub status: Status,
    /// The report's signature (killed), the signal or exit status (crashed), or the
    /// argument (equivalent).
    pub detail: String,
    /// The step of the diverging program at which the report came.
    pub step: Option<usize>,
    pub seconds: f64,
    pub programs: u64,
    pub ops: u64,
    /// Listed in the equivalent file and still run (`--check-equivalent`).
    pub listed_equivalent: bool,
    /// A patch mutant's patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

impl Outcome {
    fn new(mutant: &Mutant) -> Outcome {
        Outcome {
            id: mutant.id,
            key: mutant.key(),
            file: mutant.file.clone(),
            function: mutant.function.clone(),
            line: mutant.line,
            operator: mutant.operator,
            original: mutant.original.clone(),
            replacement: mutant.replacement.clone(),
            status: Status::Survived,
            detail: String::new(),
            step: None,
            seconds: 0.0,
            programs: 0,
            ops: 0,
            listed_equivalent: false,
            patch: None,
        }
    }

    fn detected(&self) -> bool {
        matches!(
            self.status,
            Status::Killed | Status::TimedOut | Status::Crashed
        )
    }
}

/// Run one mutant in a process of its own (`bin` is the schemata build: the command line
/// tool for stress, the `differential` fuzz binary for libFuzzer) and classify it.
pub fn run_one(
    engine: Engine,
    bin: &Path,
    mutant: &Mutant,
    seed: u64,
    budget: Duration,
    scratch: &Path,
) -> Outcome {
    let mut outcome = Outcome::new(mutant);
    let dir = scratch.join(format!("mutant-{}", mutant.id));
    let log = scratch.join(format!("mutant-{}.log", mutant.id));
    let mut command = Command::new(bin);
    match engine {
        Engine::Stress => {
            command
                .args(["stress", "--json", "--seed", &seed.to_string(), "--time"])
                .arg(format!("{}ms", budget.as_millis()))
                .arg("--out")
                .arg(&dir);
        }
        Engine::Libfuzzer => {
            let corpus = dir.join("corpus");
            let _ = std::fs::create_dir_all(&corpus);
            let dict = crate::corpus::root().join("fuzz/dict/differential.dict");
            command
                .arg(&corpus)
                .arg(format!("-seed={seed}"))
                .arg(format!("-max_total_time={}", budget.as_secs().max(1)))
                .arg("-timeout=5")
                .arg("-len_control=0")
                .arg("-rss_limit_mb=4096")
                .arg("-print_final_stats=1")
                .arg(format!("-artifact_prefix={}/", dir.display()));
            if dict.is_file() {
                command.arg(format!("-dict={}", dict.display()));
            }
        }
    }
    let started = Instant::now();
    let child = std::fs::File::create(&log).and_then(|file| {
        let err = file.try_clone()?;
        command
            .env("MEMSLOT_MUTANT", mutant.id.to_string())
            .env_remove("MEMSLOT_DIFF_ZOO")
            .env_remove("MEMSLOT_DIFF_PLANT")
            .env_remove("MEMSLOT_DIFF_GENERATOR")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(if engine == Engine::Libfuzzer {
                Stdio::from(err)
            } else {
                Stdio::null()
            })
            .spawn()
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            outcome.status = Status::Crashed;
            outcome.detail = format!("could not start {}: {e}", bin.display());
            return outcome;
        }
    };
    // Both engines check their budget between programs, each a few milliseconds: a mutant
    // still running 10 s after its budget loops inside one program. Under stress, so does
    // one that has printed no progress line for HANG (stress prints one a second, between
    // programs, to the log; libFuzzer's -timeout=5 is the same rule).
    const HANG: Duration = Duration::from_secs(5);
    let limit = budget + Duration::from_secs(10);
    let (mut heard, mut heard_at) = (0, Instant::now());
    let status = loop {
        if engine == Engine::Stress {
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            if len != heard {
                (heard, heard_at) = (len, Instant::now());
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None)
                if started.elapsed() > limit
                    || (engine == Engine::Stress && heard_at.elapsed() > HANG) =>
            {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    outcome.seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    let signature = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("signature: "))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string());
    let step = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("step ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    let verdict = match engine {
        Engine::Stress => {
            if let Some(json) = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            {
                outcome.seconds = json["seconds"].as_f64().unwrap_or(outcome.seconds);
                outcome.programs = json["programs"].as_u64().unwrap_or(0);
                outcome.ops = json["ops"].as_u64().unwrap_or(0);
            }
            match status.map(|s| (s.code(), s)) {
                None => Status::TimedOut,
                Some((Some(0), _)) => Status::Survived,
                Some((Some(1), _)) => Status::Killed,
                Some((_, s)) => {
                    outcome.detail = format!("stress exited with {s}");
                    Status::Crashed
                }
            }
        }
        Engine::Libfuzzer => {
            outcome.programs = crate::eval::libfuzzer_executions(&text).unwrap_or(0);
            let artifact = |prefix: &str| {
                std::fs::read_dir(&dir).ok().is_some_and(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
                })
            };
            match status {
                None => Status::TimedOut,
                Some(_) if artifact("timeout-") => Status::TimedOut,
                Some(_) if artifact("crash-") && signature.is_some() => Status::Killed,
                Some(s) if s.success() => Status::Survived,
                Some(s) => {
                    outcome.detail = format!(
                        "the fuzz binary exited with {s}{}",
                        if artifact("crash-") {
                            " (a crash, no report)"
                        } else {
                            ""
                        }
                    );
                    Status::Crashed
                }
            }
        }
    };
    outcome.status = verdict;
    match outcome.status {
        Status::TimedOut if outcome.seconds < budget.as_secs_f64() => {
            outcome.detail = format!("one program ran over {} s", HANG.as_secs())
        }
        Status::TimedOut => outcome.detail = format!("no answer within {} s", limit.as_secs()),
        Status::Killed => {
            outcome.detail = signature.unwrap_or_else(|| "reported".to_string());
            outcome.step = step;
        }
        _ => {}
    }
    if matches!(outcome.status, Status::Survived) {
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

/// What runs on each mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `memslot-diff stress --seed S --time T` on the standard set.
    Stress,
    /// The shipped `differential` fuzz binary (`-s none`) from an empty corpus, with the
    /// target's dictionary, `-seed=S -max_total_time=T`.
    Libfuzzer,
}

impl Engine {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Stress => "stress",
            Engine::Libfuzzer => "libfuzzer",
        }
    }
}

/// Options of the command.
struct Options {
    engine: Engine,
    time: Duration,
    jobs: usize,
    seed: u64,
    sample: Option<usize>,
    only: Vec<String>,
    keys: Option<PathBuf>,
    out: PathBuf,
    list: bool,
    bin: Option<PathBuf>,
    /// Run the listed equivalent mutants too: a claim of equivalence the harness refutes fails.
    check_equivalent: bool,
}

const USAGE: &str = "mutants [--engine stress|libfuzzer] [--time T] [--jobs N] [--seed S] [--sample N] [--only TEXT] [--keys FILE] [--out DIR] [--list] [--bin FILE] [--check-equivalent]";

/// `memslot-diff mutants ...`.
pub fn command(args: &[String], out: &mut dyn Write) -> Result<i32, String> {
    let mut o = Options {
        engine: Engine::Stress,
        time: Duration::from_secs(60),
        jobs: 2,
        seed: 1,
        sample: None,
        only: Vec::new(),
        keys: None,
        out: crate::corpus::root().join("target/memslot-diff/mutants"),
        list: false,
        bin: None,
        check_equivalent: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("mutants: option {name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("mutants: bad number '{v}' for {name}"))
        };
        match arg.as_str() {
            "--time" => {
                o.time = crate::cli::parse_duration(&value("--time")?)
                    .map_err(|e| format!("mutants: --time: {e}"))?
            }
            "--jobs" => o.jobs = number("--jobs", value("--jobs")?)?.max(1) as usize,
            "--seed" => o.seed = number("--seed", value("--seed")?)?,
            "--sample" => o.sample = Some(number("--sample", value("--sample")?)?.max(1) as usize),
            "--only" => o.only.push(value("--only")?),
            "--keys" => o.keys = Some(PathBuf::from(value("--keys")?)),
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--bin" => o.bin = Some(PathBuf::from(value("--bin")?)),
            "--list" => o.list = true,
            "--check-equivalent" => o.check_equivalent = true,
            "--engine" => {
                o.engine = match value("--engine")?.as_str() {
                    "stress" => Engine::Stress,
                    "libfuzzer" => Engine::Libfuzzer,
                    other => {
                        return Err(format!(
                            "mutants: unknown engine '{other}' (known: stress, libfuzzer)"
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "mutants: unknown option '{other}'\nusage: memslot-diff {USAGE}"
                ))
            }
        }
    }
    let c_dir = sources_dir();
    let (mut mutants, schemata) = generate(&c_dir)?;
    // The hand-written multi-line mutants join the generated ones (operator `patch`).
    let patches = patches::load(&crate::corpus::root())?;
    mutants.extend(patches.iter().map(|p| p.mutant.clone()));
    let equivalent_file = c_dir.join(EQUIVALENT_LIST);
    let equivalent_text = std::fs::read_to_string(&equivalent_file)
        .map_err(|e| format!("{}: {e}", equivalent_file.display()))?;
    let equivalent = equivalents(&equivalent_text, &equivalent_file.display().to_string())?;
    let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
    let stale: Vec<&String> = equivalent.keys().filter(|k| !keys.contains(*k)).collect();
    if !stale.is_empty() {
        return Err(format!(
            "{}: {} entr{} name no mutant of today's ports (first: {}); update the list",
            equivalent_file.display(),
            stale.len(),
            if stale.len() == 1 { "y" } else { "ies" },
            stale[0]
        ));
    }
    let mut chosen: Vec<&Mutant> = mutants
        .iter()
        .filter(|m| o.only.is_empty() || o.only.iter().any(|t| m.key().contains(t.as_str())))
        .collect();
    if let Some(file) = &o.keys {
        // Exactly the mutants a file names, one key per line (`.ci/run`'s fixed sample).
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut picked = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let key = line.trim();
            if key.is_empty() || key.starts_with('#') {
                continue;
            }
            let m = chosen.iter().find(|m| m.key() == key).ok_or_else(|| {
                format!(
                    "{}:{}: no mutant of today's ports has this key (see memslot-diff mutants --list): {key}",
                    file.display(),
                    n + 1
                )
            })?;
            picked.push(*m);
        }
        chosen = picked;
    }
    if let Some(n) = o.sample {
        // Evenly spaced over the non-equivalent ones: a fixed sample for a given tree.
        let pool: Vec<&Mutant> = chosen
            .into_iter()
            .filter(|m| !equivalent.contains_key(&m.key()))
            .collect();
        let step = pool.len().div_ceil(n).max(1);
        chosen = pool.into_iter().step_by(step).take(n).collect();
    }
    if o.list {
        for m in &chosen {
            let eq = if equivalent.contains_key(&m.key()) {
                "  [equivalent]"
            } else {
                ""
            };
            let _ = writeln!(out, "{:4} {}:{} {}{eq}", m.id, m.file, m.line, m.key());
        }
        let _ = writeln!(out, "{} of {} mutants", chosen.len(), mutants.len());
        return Ok(0);
    }
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let bin = match &o.bin {
        Some(b) => b.clone(),
        None => build(&o.out, &schemata, o.engine, out)?,
    };
    // The schemata with no mutant selected are the ports themselves: they must agree.
    let _ = writeln!(
        out,
        "==> checking the schemata build with no mutant selected"
    );
    let clean = Mutant {
        id: usize::MAX,
        file: "-".into(),
        function: "-".into(),
        line: 0,
        operator: "none",
        original: String::new(),
        replacement: String::new(),
        occurrence: 1,
    };
    let scratch = o.out.join("runs");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let baseline = run_one(
        o.engine,
        &bin,
        &clean,
        o.seed,
        o.time.min(Duration::from_secs(5)),
        &scratch,
    );
    if !matches!(baseline.status, Status::Survived) {
        return Err(format!(
            "the schemata build without a mutant is reported ({:?}: {}): a bug of the mutator, see {}",
            baseline.status,
            baseline.detail,
            scratch.display()
        ));
    }
    let _ = writeln!(
        out,
        "==> {} mutant(s), {} s each at most, {} job(s), stress seed {}",
        chosen.len(),
        o.time.as_secs_f64(),
        o.jobs,
        o.seed
    );
    let chosen_patches: Vec<&patches::Patch> = patches
        .iter()
        .filter(|p| chosen.iter().any(|m| m.id == p.mutant.id))
        .collect();
    let patch_bins = if chosen_patches.is_empty() {
        BTreeMap::new()
    } else {
        patches::build_all(&chosen_patches, o.engine, &o.out, out)?
    };
    let bins = Bins {
        schemata: &bin,
        patches: &patch_bins,
    };
    let mut outcomes = run_all(&bins, &chosen, &equivalent, &o, &scratch, out);
    for r in outcomes.iter_mut() {
        if let Some(p) = patches.iter().find(|p| p.mutant.id == r.id) {
            r.patch = Some(p.text.clone());
        }
    }
    let summary = summarize(&outcomes, &o);
    let json = serde_json::json!({
        "time_budget_s": o.time.as_secs_f64(),
        "seed": o.seed,
        "engine": o.engine.name(),
        "mutants": outcomes,
    });
    let write = |name: &str, text: &str| {
        let p = o.out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(
        "results.json",
        &serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    write("table.md", &summary)?;
    write("chart.svg", &chart(&outcomes, &o))?;
    let _ = write!(out, "\n{summary}");
    let _ = writeln!(
        out,
        "\nwritten: {0}/results.json, {0}/table.md, {0}/chart.svg",
        o.out.display()
    );
    let survived = outcomes
        .iter()
        .any(|r| matches!(r.status, Status::Survived | Status::BuildFailed));
    let refuted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|r| r.listed_equivalent && r.detected())
        .collect();
    for r in &refuted {
        let _ = writeln!(
            out,
            "error: listed as equivalent in reference/c/{EQUIVALENT_LIST} but detected ({}): {}",
            r.detail, r.key
        );
    }
    Ok(if survived || !refuted.is_empty() {
        1
    } else {
        0
    })
}

/// The mutants still alive over time, one line per port and one for the patches (the eval
/// chart's survival plot: detection times against the budget).
fn chart(outcomes: &[Outcome], o: &Options) -> String {
    const KINDS: [&str; 4] = ["pre", "post", "post15", "patches"];
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
    let groups: Vec<crate::eval::Group> = KINDS
        .iter()
        .filter_map(|&k| {
            let rs: Vec<&Outcome> = outcomes
                .iter()
                .filter(|r| kind(r) == k && !matches!(r.status, Status::Equivalent))
                .collect();
            if rs.is_empty() {
                return None;
            }
            let times: Vec<f64> = rs
                .iter()
                .filter(|r| r.detected())
                .map(|r| r.seconds)
                .collect();
            Some(crate::eval::Group {
                bug: k,
                engine: o.engine.name(),
                generator: "steered",
                trials: rs.len(),
                detected: times.len(),
                cap_seconds: o.time.as_secs_f64(),
                seconds: crate::eval::Spread::of(&times),
                median_executions: None,
                survival: crate::eval::survival(&times, rs.len()),
            })
        })
        .collect();
    let label = |g: &crate::eval::Group| {
        let what = if g.bug == "patches" {
            "patch mutants".to_string()
        } else {
            format!("{} port", g.bug)
        };
        format!(
            "{what} · {} ({}/{} detected)",
            g.engine, g.detected, g.trials
        )
    };
    crate::eval::survival_svg_with(
        &groups,
        &format!(
            "memslot-diff mutants: mutants still alive over time ({} s budget)",
            o.time.as_secs_f64()
        ),
        "non-equivalent mutants still alive",
        &label,
    )
}

/// Write the schemata and build from them what `engine` runs (the command line tool, or the
/// shipped `differential` fuzz binary); returns the binary.
fn build(
    out_dir: &Path,
    schemata: &[(PathBuf, String)],
    engine: Engine,
    out: &mut dyn Write,
) -> Result<PathBuf, String> {
    let src = out_dir.join("schemata");
    for (rel, text) in schemata {
        let p = src.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // Unchanged files keep their time stamps: cargo then has nothing to rebuild.
        if std::fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let root = crate::corpus::root();
    let target = root.join("target").join(match engine {
        Engine::Stress => "mutants",
        Engine::Libfuzzer => "mutants-fuzz",
    });
    let _ = writeln!(
        out,
        "==> building {} from the mutant schemata in {} (target dir {})",
        match engine {
            Engine::Stress => "memslot-diff",
            Engine::Libfuzzer => "the differential fuzz target (cargo fuzz build -s none)",
        },
        src.display(),
        target.display()
    );
    cargo_build(
        &root,
        &target,
        engine,
        Some(&src),
        &out_dir.join("build.log"),
        out,
    )
}

/// Build what `engine` runs from the workspace at `root` into `target`, with the C ports'
/// sources taken from `mutant_sources` first if given; the build's output goes to `log`.
/// Returns the binary.
pub(crate) fn cargo_build(
    root: &Path,
    target: &Path,
    engine: Engine,
    mutant_sources: Option<&Path>,
    log: &Path,
    out: &mut dyn Write,
) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    let binary = match engine {
        Engine::Stress => {
            command.args([
                "build",
                "--release",
                "-p",
                "memslot-diff",
                "--features",
                "cli",
                "--bin",
                "memslot-diff",
            ]);
            target.join("release").join("memslot-diff")
        }
        Engine::Libfuzzer => {
            // As ci/lib.sh's select_fuzz_toolchain: nightly when installed, else stable
            // with RUSTC_BOOTSTRAP=1.
            let nightly = Command::new("rustup")
                .args(["run", "nightly", "rustc", "--version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if nightly {
                command.arg("+nightly");
            } else {
                command.env("RUSTC_BOOTSTRAP", "1");
            }
            command
                .args([
                    "fuzz",
                    "build",
                    "--sanitizer",
                    "none",
                    "--release",
                    "--target-dir",
                ])
                .arg(target)
                .arg("differential");
            let host = Command::new("rustc")
                .arg("-vV")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
                })
                .unwrap_or_else(|| "x86_64-unknown-linux-gnu".to_string());
            target.join(host).join("release").join("differential")
        }
    };
    match schemata_compiler() {
        Some(cc) => {
            let _ = writeln!(out, "==> C compiler: {}", cc.display());
            command.env("CC", cc);
        }
        None if user_cc().is_some() => {
            let _ = writeln!(out, "==> C compiler: $CC");
        }
        None => {
            let _ = writeln!(
                out,
                "warning: no clang found (run ci/setup, or set CC): gcc treats a read of an uninitialized local as undefined even with -ftrivial-auto-var-init, so a mutant that drops an initialization may be optimized back into the original and survive"
            );
        }
    }
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    match mutant_sources {
        Some(src) => command.env("MEMSLOT_MUTANT_SOURCES", src),
        None => command.env_remove("MEMSLOT_MUTANT_SOURCES"),
    };
    let status = command
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        // Warnings in mutated code are expected: not errors here.
        .env_remove("MEMSLOT_WERROR")
        .env_remove("RUSTFLAGS")
        .env_remove("CFLAGS")
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let first = text
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("(no error line)");
        let hint = if engine == Engine::Libfuzzer {
            " (the libfuzzer engine needs cargo-fuzz and clang: run ci/setup)"
        } else {
            ""
        };
        return Err(format!(
            "the build in {} failed ({status}){hint}: {first}\nwhole log: {}",
            root.display(),
            log.display()
        ));
    }
    Ok(binary)
}

/// The C compiler for the schemata build: clang (`clang-19`, then `clang` on PATH) unless
/// `CC` is set. clang gives a dropped initialization the -ftrivial-auto-var-init pattern; gcc
/// (measured with gcc 12) still optimizes the uninitialized read away, and the mutant with it.
fn schemata_compiler() -> Option<PathBuf> {
    if user_cc().is_some() {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    ["clang-19", "clang"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// `CC` when set to something (an empty `CC` counts as unset).
fn user_cc() -> Option<std::ffi::OsString> {
    std::env::var_os("CC").filter(|cc| !cc.is_empty())
}

/// The binaries mutants run in: the schemata build, and one build per patch (or why it
/// failed).
struct Bins<'a> {
    schemata: &'a Path,
    patches: &'a BTreeMap<usize, Result<PathBuf, String>>,
}

impl Bins<'_> {
    fn run(&self, o: &Options, m: &Mutant, scratch: &Path) -> Outcome {
        match self.patches.get(&m.id) {
            None => run_one(o.engine, self.schemata, m, o.seed, o.time, scratch),
            Some(Ok(bin)) => run_one(o.engine, bin, m, o.seed, o.time, scratch),
            Some(Err(why)) => {
                let mut r = Outcome::new(m);
                r.status = Status::BuildFailed;
                r.detail = why.clone();
                r
            }
        }
    }
}

fn run_all(
    bins: &Bins<'_>,
    chosen: &[&Mutant],
    equivalent: &BTreeMap<String, String>,
    o: &Options,
    scratch: &Path,
    out: &mut dyn Write,
) -> Vec<Outcome> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; chosen.len()];
    std::thread::scope(|scope| {
        for _ in 0..o.jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = chosen.get(i) else { break };
                let outcome = match equivalent.get(&m.key()) {
                    Some(why) if o.check_equivalent => {
                        let mut r = bins.run(o, m, scratch);
                        r.listed_equivalent = true;
                        if !r.detected() {
                            r.status = Status::Equivalent;
                            r.detail = why.clone();
                        }
                        r
                    }
                    Some(why) => {
                        let mut r = Outcome::new(m);
                        r.status = Status::Equivalent;
                        r.detail = why.clone();
                        r
                    }
                    None => bins.run(o, m, scratch),
                };
                if tx.send((i, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (i, r) in rx {
            done += 1;
            if !matches!(r.status, Status::Killed | Status::Equivalent) {
                let _ = writeln!(
                    out,
                    "  [{done}/{}] {:?}: {} ({})",
                    chosen.len(),
                    r.status,
                    r.key,
                    r.detail
                );
            } else if done % 25 == 0 {
                let _ = writeln!(out, "  [{done}/{}]", chosen.len());
            }
            outcomes[i] = Some(r);
        }
    });
    outcomes.into_iter().flatten().collect()
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
fn summarize(outcomes: &[Outcome], o: &Options) -> String {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|r| f(r)).count();
    let equivalent = count(&|r| matches!(r.status, Status::Equivalent));
    let detected = count(&|r| r.detected());
    let considered = outcomes.len() - equivalent;
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
         (reference/c/{EQUIVALENT_LIST}). Time to detect: median {}, slowest {}.\n\n",
        o.engine.name(),
        o.seed,
        o.time.as_secs_f64(),
        if considered == 0 { 100.0 } else { 100.0 * detected as f64 / considered as f64 },
        count(&|r| matches!(r.status, Status::Killed)),
        count(&|r| matches!(r.status, Status::TimedOut)),
        count(&|r| matches!(r.status, Status::Crashed)),
        count(&|r| matches!(r.status, Status::Survived)),
        seconds(median(kill_times.clone())),
        seconds(Some(slowest).filter(|_| !kill_times.is_empty())),
    );
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
        let n = rs.len() - eq;
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
    for r in outcomes
        .iter()
        .filter(|r| !matches!(r.status, Status::Equivalent))
    {
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

    #[test]
    fn the_ports_have_mutants_in_every_function_the_issue_names() {
        let (mutants, files) = generate(&sources_dir()).unwrap();
        assert_eq!(files.len(), 6);
        let functions: HashSet<&str> = mutants.iter().map(|m| m.function.as_str()).collect();
        for f in [
            "update_memslots",
            "search_memslots",
            "id_to_memslot",
            "__kvm_set_memory_region",
            "kvm_memslot_delete",
            "kvm_memslot_move_backward",
            "kvm_memslot_move_forward",
        ] {
            assert!(functions.contains(f), "no mutant in {f}: {functions:?}");
        }
        // Keys are unique: the equivalent list can name each mutant.
        let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
        assert_eq!(keys.len(), mutants.len());
    }

    #[test]
    fn the_committed_equivalent_list_names_real_mutants_with_arguments() {
        let file = sources_dir().join(EQUIVALENT_LIST);
        let text = std::fs::read_to_string(&file).unwrap();
        let list = equivalents(&text, "list").unwrap();
        let (mutants, _) = generate(&sources_dir()).unwrap();
        let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
        for (key, why) in &list {
            assert!(keys.contains(key), "{key}: no such mutant");
            assert!(why.len() > 20, "{key}: argument too short: {why}");
        }
        assert!(equivalents("a b", "f")
            .unwrap_err()
            .starts_with("f:1: expected"));
    }

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
        };
        let outcomes = [
            outcome("pre/kvm_main.c", "drop", Status::Killed, 0.01),
            outcome("pre/kvm_main.c", "drop", Status::Survived, 60.0),
            outcome("pre/kvm_main.c", "drop", Status::Equivalent, 0.0),
            outcome("post15/kvm_host.h", "negate", Status::Crashed, 0.2),
            outcome("core/src/tree.rs", "patch", Status::Killed, 1.5),
        ];
        let svg = chart(&outcomes, &o);
        assert_eq!(svg.matches("class=\"series\"").count(), 3, "{svg}");
        assert!(svg.contains("pre port · stress (1/2 detected)"), "{svg}");
        assert!(svg.contains("post15 port · stress (1/1 detected)"), "{svg}");
        assert!(
            svg.contains("patch mutants · stress (1/1 detected)"),
            "{svg}"
        );
        assert!(!svg.contains("post port"), "{svg}");
    }
}
