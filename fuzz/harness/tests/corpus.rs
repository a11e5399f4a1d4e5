//! Replays every file under `corpus/` through exactly the decoding its fuzz target uses, and
//! fails if any implementation disagrees or if a file's observable behaviour changed.
//!
//! * Scenario text (`*.scenario`) is encoded to the target's byte form, which must decode back
//!   to the same program, and that byte input is checked by `targets::check`, as the fuzz
//!   target would. (Under a zoo lockstep whose decoding skips `fail-prepare`, a seed using it
//!   is replayed as text, and the test checks that fail-prepare is the only thing the bytes lose.)
//! * A scenario with an `arch` line (`arch x86-32k`) runs as text on that profile's lockstep,
//!   as `replay` runs it.
//! * Other files are fuzz artifacts, decoded as the target directory says.
//! * Expected outcomes: `fuzz/harness/tests/corpus.expected` holds one line per file,
//!   `<path> <summary>` (`replay --summary` prints the summary: steps, return codes, lookup
//!   hits and misses, final used_slots and generation per AS). A file whose summary no longer
//!   matches fails the test, so a behaviour change shared by every implementation is noticed
//!   too. Files not listed yet are replayed and reported; refresh the list with
//!   `MEMSLOT_DIFF_BLESS=1 cargo test -p memslot-harness --test corpus`. A `# expect:` line in the
//!   file itself takes precedence.

use std::collections::BTreeMap;
use std::path::Path;

use memslot_harness::corpus::{self, Format};
use memslot_harness::decode::encode;
use memslot_harness::report::{render, Context};
use memslot_harness::zoo::Lockstep;
use memslot_harness::{run, ArchProfile, Op, RunOptions, Runner, Target};

const EXPECTED: &str = "tests/corpus.expected";

fn expected() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED))
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(p, s)| (p.to_string(), s.trim().to_string()))
        })
        .collect()
}

#[test]
fn every_corpus_file_agrees_and_behaves_as_recorded() {
    // `MEMSLOT_DIFF_CORPUS=DIR` replays a copy instead (files keep their `corpus/...` names).
    let corpus_dir = corpus::dir();
    let expected = expected();
    let mut seen = BTreeMap::new();
    let mut failures = Vec::new();
    let mut steps = 0;
    for target in Target::ALL {
        for kind in ["seeds", "regressions"] {
            let dir = corpus_dir.join(target.name()).join(kind);
            if !dir.is_dir() {
                continue;
            }
            for file in corpus::files(&dir).expect("corpus directory") {
                let rel = Path::new("corpus")
                    .join(file.strip_prefix(&corpus_dir).unwrap_or(&file))
                    .display()
                    .to_string();
                let shown = if corpus_dir == corpus::root().join("corpus") {
                    rel.clone()
                } else {
                    file.display().to_string()
                };
                let loaded = match corpus::load(&file, Some(target), None) {
                    Ok(l) => l,
                    Err(e) => {
                        failures.push(e);
                        continue;
                    }
                };
                let ctx = Context {
                    target: Some(target.name().to_string()),
                    input: Some(shown.clone()),
                    replay: Some(Context::replay_command(&shown, None)),
                    note: None,
                };
                // The byte form the fuzz target sees, and its decoding.
                let bytes = match loaded.format {
                    Format::Text => encode(&loaded.ops),
                    Format::Bytes => std::fs::read(&file).expect("readable"),
                };
                let decoded = target.decode(&bytes).ops;
                let without: Vec<Op> = loaded
                    .ops
                    .iter()
                    .copied()
                    .filter(|op| !matches!(op, Op::FailPrepare { .. }))
                    .collect();
                let summary = if loaded.arch != ArchProfile::default() {
                    // A scenario for another profile (its `arch` line) runs on that
                    // profile's lockstep, as `replay` runs it; the fuzz targets run at x86-512.
                    let lockstep = Lockstep::at(loaded.arch);
                    let result = Runner::new(lockstep.implementations(), RunOptions::default())
                        .run(&loaded.ops);
                    match result.divergence {
                        None => result.stats.summary(),
                        Some(d) => {
                            failures.push(render(&d, &ctx));
                            continue;
                        }
                    }
                } else if decoded == loaded.ops {
                    match memslot_harness::targets::check(target, &bytes, &ctx) {
                        Ok(stats) => stats.summary(),
                        Err(report) => {
                            failures.push(report);
                            continue;
                        }
                    }
                } else if decoded == without && loaded.format == Format::Text {
                    let result = run(&loaded.ops);
                    match result.divergence {
                        None => result.stats.summary(),
                        Some(d) => {
                            failures.push(render(&d, &ctx));
                            continue;
                        }
                    }
                } else {
                    failures.push(format!(
                        "{rel}: the {} target's decoding changes the program",
                        target.name()
                    ));
                    continue;
                };
                let count: usize = summary
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.strip_prefix("steps="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                assert_eq!(
                    count,
                    loaded.ops.len(),
                    "{rel}: every operation must have been checked"
                );
                steps += count;
                let want = loaded
                    .expect
                    .clone()
                    .or_else(|| expected.get(&rel).cloned());
                match want {
                    Some(want) if want != summary => failures.push(format!(
                        "{rel}: behaviour changed\n  expected: {want}\n  now:      {summary}\n  (if intended: MEMSLOT_DIFF_BLESS=1 cargo test -p memslot-harness --test corpus)"
                    )),
                    Some(_) => {}
                    None => println!("note: {rel} has no recorded outcome yet: {summary}"),
                }
                seen.insert(rel, summary);
            }
        }
    }
    if std::env::var_os("MEMSLOT_DIFF_BLESS").is_some() {
        let mut text = String::from("# Expected replay summaries of corpus/ (see tests/corpus.rs). Regenerate with\n# MEMSLOT_DIFF_BLESS=1 cargo test -p memslot-harness --test corpus\n");
        for (path, summary) in &seen {
            text.push_str(&format!("{path} {summary}\n"));
        }
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED), text)
            .expect("write expectations");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert!(
        seen.len() >= 10,
        "only {} corpus files found under {}",
        seen.len(),
        corpus_dir.display()
    );
    assert!(steps >= 1000, "the corpus checked only {steps} steps");
    let stale: Vec<&String> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(
        stale.is_empty(),
        "recorded outcomes for files that are gone: {stale:?} (bless again)"
    );
}

/// `corpus/update/*/*.calls`: every file parses, survives the `update` target's byte form, and
/// the core and the fixed post15 agree on it.
#[test]
fn every_update_corpus_file_agrees() {
    use memslot_harness::lowlevel;
    let root = corpus::root().join("corpus").join("update");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind);
        for file in corpus::files(&dir).expect("corpus/update directory") {
            if file.extension().is_none_or(|e| e != "calls") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("readable");
            let calls =
                lowlevel::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(
                lowlevel::decode(&lowlevel::encode(&calls)),
                calls,
                "{}: the byte form decodes to other calls",
                file.display()
            );
            if let Err(report) = lowlevel::check(memslot_reference::Port::Post15, &calls) {
                panic!("{}:\n{report}", file.display());
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 2, "only {replayed} update corpus files");
}
