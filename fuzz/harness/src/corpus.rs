//! Programs on disk: scenario text files and fuzz artifacts, and the committed corpus.
//!
//! # Corpus layout (`corpus/` at the top of the repository)
//!
//! ```text
//! corpus/<target>/seeds/*.scenario        hand-written and generated seeds (scenario text)
//! corpus/<target>/regressions/*.scenario  minimized failures, scenario text, with a `# note:`
//! corpus/<target>/regressions/<name>      (or a raw fuzz artifact, decoded as <target> does)
//! ```
//!
//! Seeds are scenario text so that people can read and write them; `cargo test` and
//! `memslot-diff replay` read them directly, and `memslot-diff seed-corpus` converts every seed
//! and regression to the target's byte form ([`crate::decode::encode`]) in
//! `fuzz/corpus/<target>/`, the working corpus `cargo fuzz run <target>` starts from. A seed may
//! carry a `# expect: ...` line (see [`crate::scenario`]); `cargo test` checks the replay
//! against it.
//!
//! A file is scenario text if it ends in `.scenario`, or if it is UTF-8 text whose every
//! non-comment line starts with an operation name; anything else is a fuzz artifact.

use std::path::{Path, PathBuf};

use crate::decode::{encode, Program};
use crate::ops::Op;
use crate::scenario;
use crate::target::Target;

/// The repository root (the workspace this crate was built in: it lives in `fuzz/harness`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The committed corpus, `<root>/corpus`, or the directory `MEMSLOT_DIFF_CORPUS` names (so that
/// `cargo test` can replay a copy, e.g. the one `ci/nightly --corpus-root` wrote into).
pub fn dir() -> PathBuf {
    std::env::var_os("MEMSLOT_DIFF_CORPUS")
        .filter(|d| !d.is_empty())
        .map_or_else(|| root().join("corpus"), PathBuf::from)
}

/// The files under `path` (itself if it is a file), recursively, sorted; hidden files,
/// `README*` and `*.md` are skipped.
pub fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name.starts_with("README") || name.ends_with(".md") {
            continue;
        }
        if entry.is_dir() {
            out.extend(files(&entry)?);
        } else {
            out.push(entry);
        }
    }
    Ok(out)
}

/// How to read a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Bytes,
}

/// Decide whether a file is scenario text or a fuzz artifact.
pub fn detect(path: &Path, data: &[u8]) -> Format {
    if path.extension().is_some_and(|e| e == "scenario") {
        return Format::Text;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return Format::Bytes;
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Format::Bytes;
    }
    // Lines that look like `word key=value ...` (so that a typo in the operation name is
    // reported as such, not decoded as bytes).
    let text_like = text.lines().all(|line| {
        let code = line.split('#').next().unwrap_or("");
        let mut words = code.split_whitespace();
        match words.next() {
            None => true,
            Some("arch") => words.count() == 1,
            Some(word) => {
                word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    && words.all(|w| w.contains('=') || w == "off")
            }
        }
    });
    if text_like {
        Format::Text
    } else {
        Format::Bytes
    }
}

/// A program read from a file.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub ops: Vec<Op>,
    pub format: Format,
    /// The target whose decoding was used (artifacts only).
    pub target: Option<Target>,
    /// Remarks on the decoding (truncation, skipped operations).
    pub notes: Vec<String>,
    /// The `# expect:` annotation (scenario text only).
    pub expect: Option<String>,
    /// The arch profile the program is for: a scenario's `arch` line; an artifact's is the
    /// one its fuzzer ran at (this process's, `MEMSLOT_DIFF_ARCH`), the one it decodes at.
    pub arch: crate::ArchProfile,
}

/// Read a scenario or an artifact. Errors name the file (and line).
pub fn load(path: &Path, target: Option<Target>, format: Option<Format>) -> Result<Loaded, String> {
    let shown = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    match format.unwrap_or_else(|| detect(path, &data)) {
        Format::Text => {
            let text =
                std::str::from_utf8(&data).map_err(|e| format!("{shown}: not UTF-8 text: {e}"))?;
            let ops = scenario::parse(text).map_err(|e| e.in_file(&shown))?;
            Ok(Loaded {
                arch: scenario::parse_arch(text).map_err(|e| e.in_file(&shown))?,
                ops,
                format: Format::Text,
                target: None,
                notes: Vec::new(),
                expect: scenario::expectation(text).map(str::to_string),
            })
        }
        Format::Bytes => {
            let target = target
                .or_else(|| Target::infer(path))
                .unwrap_or(Target::Differential);
            let program = target.decode(&data);
            Ok(Loaded {
                arch: target.config().arch,
                notes: notes(&shown, &program),
                ops: program.ops,
                format: Format::Bytes,
                target: Some(target),
                expect: None,
            })
        }
    }
}

fn notes(shown: &str, p: &Program) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(offset) = p.truncated_at {
        notes.push(format!(
            "{shown}: byte {offset}: the input ends inside an operation; the fuzz target ignores the rest, and so does this replay"
        ));
    }
    if p.skipped_fail_prepare > 0 {
        notes.push(format!(
            "{shown}: {} fail-prepare operation(s) skipped: this zoo lockstep's decoding does not arm it",
            p.skipped_fail_prepare
        ));
    }
    notes
}

/// The byte form of a scenario for a target, checked to decode back to the same program.
pub fn to_bytes(ops: &[Op], target: Target) -> Result<Vec<u8>, String> {
    let bytes = encode(ops);
    let back = target.decode(&bytes);
    if back.ops != ops {
        return Err(format!(
            "the program does not survive the {} target's decoding ({} of {} operations decode back; a zoo lockstep other than prepare-invalid skips fail-prepare)",
            target.name(),
            back.ops.len(),
            ops.len()
        ));
    }
    Ok(bytes)
}

/// Every fuzz target, by name: the scenario targets and `update` (`crate::lowlevel`).
pub const FUZZ_TARGETS: [&str; 4] = ["differential", "lookups", "requests", "update"];

/// A target's committed seeds and regressions in its libFuzzer byte form.
#[derive(Debug, Default)]
pub struct FuzzInputs {
    /// `(file name, bytes)`: `seeds-<stem>` or `regressions-<stem>`.
    pub inputs: Vec<(String, Vec<u8>)>,
    /// Files left out, with why (`path: reason`).
    pub skipped: Vec<String>,
}

/// `corpus_dir/<target>/{seeds,regressions}` converted to what the fuzz target `target` reads
/// (one of [`FUZZ_TARGETS`]): the working corpus `memslot-diff seed-corpus` writes, and the
/// seed half of the throughput benchmark's fixed input set.
pub fn fuzz_inputs(corpus_dir: &Path, target: &str) -> Result<FuzzInputs, String> {
    let mut out = FuzzInputs::default();
    for kind in ["seeds", "regressions"] {
        let dir = corpus_dir.join(target).join(kind);
        if !dir.is_dir() {
            continue;
        }
        for file in files(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = match Target::from_name(target) {
                Some(scenario_target) => {
                    let loaded = load(&file, Some(scenario_target), None)?;
                    // x86-512 programs are valid at every profile (an x86-32k fuzzer starts
                    // from them too); a program for another profile is not this fuzzer's.
                    let fuzzer_arch = scenario_target.config().arch;
                    if loaded.arch != fuzzer_arch && loaded.arch != crate::ArchProfile::default() {
                        out.skipped.push(format!(
                            "{}: a program for arch {}, and this fuzzer runs at {} \
                             (MEMSLOT_DIFF_ARCH={} fuzzes it)",
                            file.display(),
                            loaded.arch.name(),
                            fuzzer_arch.name(),
                            loaded.arch.name()
                        ));
                        continue;
                    }
                    match loaded.format {
                        Format::Text => match to_bytes(&loaded.ops, scenario_target) {
                            Ok(bytes) => bytes,
                            Err(e) => {
                                out.skipped.push(format!("{}: {e}", file.display()));
                                continue;
                            }
                        },
                        Format::Bytes => {
                            std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?
                        }
                    }
                }
                // The `update` target's calls, from their text form (`*.calls`).
                None if file.extension().is_some_and(|e| e == "calls") => {
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let calls = crate::lowlevel::parse(&text)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    crate::lowlevel::encode(&calls)
                }
                None => continue,
            };
            out.inputs.push((format!("{kind}-{stem}"), bytes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_text_and_bytes() {
        let p = Path::new("x");
        assert_eq!(
            detect(p, b"# c\nset id=1 size=0\n\nlookup gfn=1 # x\n"),
            Format::Text
        );
        assert_eq!(detect(p, b""), Format::Text);
        assert_eq!(detect(p, b"\x00\x01"), Format::Bytes);
        assert_eq!(detect(p, b"sett id=1"), Format::Text);
        assert_eq!(detect(p, b"set id 1"), Format::Bytes);
        assert_eq!(detect(p, b"AAAA"), Format::Bytes);
        assert_eq!(detect(Path::new("a.scenario"), b"sett id=1"), Format::Text);
        assert_eq!(detect(p, &[0xff, 0xfe]), Format::Bytes);
        assert_eq!(detect(p, b"arch x86-32k\nset id=1 size=0\n"), Format::Text);
    }
}
