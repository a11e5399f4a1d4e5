//! Which crash signatures are known, which input stands for each new one, and how a new one
//! is stored in the corpus: `corpus/<target>/regressions/<signature>.scenario`, written once
//! and never replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The signatures a target's regressions already stand for: each file's name (without
/// `.scenario`) and the `signature=` of a `# note:` line among its first five lines.
pub fn known_signatures(regressions: &Path) -> Result<BTreeSet<String>, String> {
    let mut known = BTreeSet::new();
    let entries = match std::fs::read_dir(regressions) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(known),
        Err(e) => return Err(format!("{}: {e}", regressions.display())),
    };
    for entry in entries {
        let path = entry
            .map_err(|e| format!("{}: {e}", regressions.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file()
            || name.starts_with('.')
            || name.starts_with("README")
            || name.ends_with(".md")
        {
            continue;
        }
        known.insert(name.strip_suffix(".scenario").unwrap_or(&name).to_string());
        // A raw artifact is not text: it has no note to read.
        let text = std::fs::read(&path).unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines().take(5) {
            if let Some(sig) = note_signature(line) {
                known.insert(sig.to_string());
            }
        }
    }
    Ok(known)
}

/// `# note: target=lookups signature=array.move.core found=...` -> `array.move.core`.
fn note_signature(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# note:")?;
    let at = rest.find("signature=")? + "signature=".len();
    let sig = rest[at..].split([' ', ',']).next()?;
    (!sig.is_empty()).then_some(sig)
}

/// Keep one input per signature: the smallest (the first of equal sizes by name). Inputs come
/// as (size, path, signature).
pub fn smallest_per_signature(found: Vec<(u64, PathBuf, String)>) -> BTreeMap<String, PathBuf> {
    let mut sorted = found;
    sorted.sort();
    let mut best = BTreeMap::new();
    for (_, path, sig) in sorted {
        best.entry(sig).or_insert(path);
    }
    best
}

/// A new regression case, ready to store.
pub struct Regression<'a> {
    pub target: &'a str,
    pub signature: &'a str,
    /// The day it was found, `YYYY-MM-DD`.
    pub found: &'a str,
    /// The implementations that disagree (or why none are named).
    pub disagree: &'a str,
    /// How it was found (`memslot-diff nightly`, with the planted fault if any).
    pub found_by: &'a str,
    /// How it was minimized (`yes`, `no`, `yes, then 69 -> 3 operations by ...`).
    pub minimized: &'a str,
    /// The scenario text.
    pub scenario: &'a str,
}

impl Regression<'_> {
    /// The file's text: two note lines, then the scenario.
    pub fn text(&self) -> String {
        let operations = self
            .scenario
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        format!(
            "# note: target={} signature={} found={} disagree={}\n# found by {}; {operations} operations, minimized={}\n{}",
            self.target,
            self.signature,
            self.found,
            self.disagree,
            self.found_by,
            self.minimized,
            self.scenario
        )
    }
}

/// Where a regression went.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New(PathBuf),
    /// A file of that name exists already: it is left as it is.
    Exists(PathBuf),
}

/// Write `regression` to `<regressions>/<signature>.scenario` atomically: a temporary file,
/// then link(2), which never replaces an existing file.
pub fn store(regressions: &Path, regression: &Regression) -> Result<Stored, String> {
    std::fs::create_dir_all(regressions).map_err(|e| format!("{}: {e}", regressions.display()))?;
    let dest = regressions.join(format!("{}.scenario", regression.signature));
    let tmp = regressions.join(format!(
        ".{}.scenario.tmp.{}",
        regression.signature,
        std::process::id()
    ));
    std::fs::write(&tmp, regression.text()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, &dest);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Stored::New(dest)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Stored::Exists(dest)),
        Err(e) => Err(format!("{}: {e}", dest.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::scratch;
    use super::*;

    #[test]
    fn known_signatures_are_file_names_and_notes() {
        let dir = scratch("store-known");
        std::fs::write(
            dir.join("array.move.core.scenario"),
            "set id=1 gpa=0 size=4K hva=0x1000 flags=0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("stale-lru-hint.scenario"),
            "# note: target=lookups signature=lookup.create.post15 found=2026-01-01 disagree=post15\nlookup gfn=0\n",
        )
        .unwrap();
        std::fs::write(dir.join("README.md"), "# note: signature=not-a-case\n").unwrap();
        std::fs::write(dir.join("crash-1234"), [0xffu8, 0, 1]).unwrap();
        let known = known_signatures(&dir).unwrap();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        assert_eq!(
            known,
            [
                "array.move.core",
                "crash-1234",
                "lookup.create.post15",
                "stale-lru-hint"
            ]
        );
        assert!(known_signatures(&dir.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn the_smallest_input_stands_for_its_signature() {
        let found = vec![
            (30, PathBuf::from("crash-c"), "array.move.core".to_string()),
            (12, PathBuf::from("crash-b"), "array.move.core".to_string()),
            (12, PathBuf::from("crash-a"), "array.move.core".to_string()),
            (
                99,
                PathBuf::from("crash-d"),
                "index.delete.post".to_string(),
            ),
        ];
        let best = smallest_per_signature(found);
        assert_eq!(best.len(), 2);
        assert_eq!(best["array.move.core"], PathBuf::from("crash-a"));
        assert_eq!(best["index.delete.post"], PathBuf::from("crash-d"));
    }

    #[test]
    fn a_stored_regression_is_never_replaced() {
        let dir = scratch("store-once")
            .join("differential")
            .join("regressions");
        let regression = Regression {
            target: "differential",
            signature: "array.create.core",
            found: "2026-12-07",
            disagree: "core",
            found_by: "memslot-diff nightly",
            minimized: "yes, then 5 -> 2 operations by memslot-diff minimize",
            scenario: "set id=1 gpa=0 size=4K hva=0x1000 flags=0\n# a comment\nset id=2 gpa=0x1000 size=4K hva=0x2000 flags=0\n",
        };
        let first = store(&dir, &regression).unwrap();
        let path = dir.join("array.create.core.scenario");
        assert_eq!(first, Stored::New(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "# note: target=differential signature=array.create.core found=2026-12-07 disagree=core\n\
             # found by memslot-diff nightly; 2 operations, minimized=yes, then 5 -> 2 operations by memslot-diff minimize\n\
             set id=1"
        ), "{text}");
        let again = Regression {
            scenario: "set id=9 gpa=0 size=4K hva=0x1000 flags=0\n",
            ..regression
        };
        assert_eq!(store(&dir, &again).unwrap(), Stored::Exists(path.clone()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
