//! `memslot-diff mutants ...`: options, choosing the mutants, and writing the results.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

use super::build::build;
use super::options::{MutantsArgs, Options};
use super::report::{chart, summarize};
use super::run::{run_all, run_one, Bins};
use super::{
    cargo_mutants, equivalents, generate, patches, sources_dir, Engine, Mutant, Outcome, Status,
    EQUIVALENT_LIST,
};

/// `memslot-diff mutants ...`.
pub fn command(args: MutantsArgs, out: &mut dyn Write) -> Result<i32, String> {
    let mut o = Options {
        engine: match args.engine.as_str() {
            "libfuzzer" => Engine::Libfuzzer,
            _ => Engine::Stress,
        },
        time: args.time,
        jobs: args.jobs.max(1),
        seed: args.seed,
        sample: args.sample.map(|n| n.max(1)),
        only: args.only,
        keys: args.keys,
        out: args
            .out
            .unwrap_or_else(|| memslot_harness::corpus::root().join("target/memslot-diff/mutants")),
        list: args.list,
        bin: args.bin,
        check_equivalent: args.check_equivalent,
        core_missing: None,
    };
    let c_dir = sources_dir();
    let (mut mutants, schemata) = generate(&c_dir)?;
    // The hand-written multi-line mutants join the generated ones (operator `patch`).
    let patches = patches::load(&memslot_harness::corpus::root())?;
    mutants.extend(patches.iter().map(|p| p.mutant.clone()));
    // The core's mutants, from cargo-mutants; without it the run covers the C ports and the
    // patches, and says so.
    let root = memslot_harness::corpus::root();
    let core = match cargo_mutants::load(&root) {
        Ok(core) => core,
        Err(cargo_mutants::Unavailable::NotInstalled(why)) => {
            let _ = writeln!(out, "warning: {why}");
            o.core_missing = Some(why);
            Vec::new()
        }
        Err(cargo_mutants::Unavailable::Failed(why)) => return Err(why),
    };
    mutants.extend(core.iter().map(|p| p.mutant.clone()));
    let patches: Vec<patches::Patch> = patches.into_iter().chain(core).collect();
    let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
    let mut equivalent = BTreeMap::new();
    for (file, checked) in [
        (c_dir.join(EQUIVALENT_LIST), true),
        (
            root.join(cargo_mutants::EQUIVALENT_LIST),
            o.core_missing.is_none(),
        ),
    ] {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let listed = equivalents(&text, &file.display().to_string())?;
        let stale: Vec<&String> = listed.keys().filter(|k| !keys.contains(*k)).collect();
        if checked && !stale.is_empty() {
            return Err(format!(
                "{}: {} entr{} name no mutant of today's code (first: {}); update the list",
                file.display(),
                stale.len(),
                if stale.len() == 1 { "y" } else { "ies" },
                stale[0]
            ));
        }
        equivalent.extend(listed);
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
                    "{}:{}: no mutant of today's code has this key (see memslot-diff mutants --list){}: {key}",
                    file.display(),
                    n + 1,
                    match &o.core_missing {
                        Some(why) if key.starts_with("core/src/") => format!(" ({why})"),
                        _ => String::new(),
                    }
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
    super::build::announce_compiler(out);
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
    write("chart.svg", &chart(&outcomes, &o)?)?;
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
