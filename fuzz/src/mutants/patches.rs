//! Patch mutants: multi-line, sequence-dependent bugs written by hand as unified diffs in
//! `ci/mutant-patches/*.patch`, in any of the code under test (the C ports, the core's array
//! and tree backends). Each is applied to a copy of the workspace, built on its own and run
//! like a schemata mutant. A patch that no longer applies is an error naming it: the list is
//! kept in step with the code, as the equivalent list is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::c::Mutant;
use super::Engine;

/// Where the patches live, relative to the repository root.
pub const PATCH_DIR: &str = "ci/mutant-patches";

/// Mutant ids of patches start here, past any schemata id.
const FIRST_ID: usize = 1_000_000;

/// One committed patch.
#[derive(Clone, Debug)]
pub struct Patch {
    pub mutant: Mutant,
    pub path: PathBuf,
    /// The patch text, shown for a survivor.
    pub text: String,
}

/// Every patch under `root/ci/mutant-patches`, sorted by name. The leading `# ` lines of a
/// patch say what it breaks (the first one is its summary); `+++ b/FILE` names the files.
pub fn load(root: &Path) -> Result<Vec<Patch>, String> {
    let dir = root.join(PATCH_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    paths.sort();
    let mut patches = Vec::new();
    for (k, path) in paths.into_iter().enumerate() {
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        let what = text
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .ok_or_else(|| format!("{shown}:1: a patch starts with '# <what it breaks>'"))?;
        let files: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("+++ b/"))
            .map(|l| l.split('\t').next().unwrap_or(l).trim())
            .collect();
        let Some(first) = files.first() else {
            return Err(format!(
                "{shown}: no '+++ b/FILE' line: not a unified diff (git diff makes one)"
            ));
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        patches.push(Patch {
            mutant: Mutant {
                id: FIRST_ID + k,
                file: (*first).to_string(),
                function: name,
                line: 0,
                operator: "patch",
                original: shown,
                replacement: what.trim().to_string(),
                occurrence: 1,
            },
            path,
            text,
        });
    }
    Ok(patches)
}

/// Files and directories of the workspace a build needs (the rest is output or data).
const COPIED: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    ".cargo",
    "core",
    "reference",
    "fuzz",
];
/// Names skipped inside the copied directories: build output and fuzzing data.
const SKIPPED: [&str; 4] = ["target", "corpus", "artifacts", "coverage"];

/// Make `to` a copy of the workspace's build inputs. Files whose content is already there
/// are left alone, so that cargo rebuilds only what the last patch touched.
fn sync(from: &Path, to: &Path, top: bool) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(to).map_err(|e| err(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if top && !COPIED.contains(&name_str.as_ref()) {
            continue;
        }
        if !top && SKIPPED.contains(&name_str.as_ref()) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            sync(&src, &dst, false)?;
        } else {
            let bytes = std::fs::read(&src).map_err(|e| err(&src, e))?;
            if std::fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
                // `copy` keeps the mode too: fuzz/coverage-scope is an executable.
                std::fs::copy(&src, &dst).map_err(|e| err(&dst, e))?;
            }
        }
    }
    Ok(())
}

/// Apply each patch to a copy of the workspace under `out_dir/patched` and build what the
/// engine runs. Returns, per mutant id, the binary or why the build failed. A patch that
/// does not apply is an error.
pub fn build_all(
    patches: &[&Patch],
    engine: Engine,
    out_dir: &Path,
    out: &mut dyn Write,
) -> Result<BTreeMap<usize, Result<PathBuf, String>>, String> {
    let root = crate::corpus::root();
    let copy = out_dir.join("patched");
    let bins = out_dir.join("patch-bins");
    std::fs::create_dir_all(&bins).map_err(|e| format!("{}: {e}", bins.display()))?;
    let mut built = BTreeMap::new();
    for p in patches {
        sync(&root, &copy, true)?;
        let status = Command::new("patch")
            .args([
                "-p1",
                "--batch",
                "--forward",
                "--silent",
                "--no-backup-if-mismatch",
                "-d",
            ])
            .arg(&copy)
            .arg("-i")
            .arg(&p.path)
            .status()
            .map_err(|e| format!("could not run patch (install it: apt-get install patch): {e}"))?;
        if !status.success() {
            return Err(format!(
                "{}: does not apply to today's code any more; update it (git diff in a checkout with the change)",
                p.mutant.original
            ));
        }
        let _ = writeln!(
            out,
            "==> patch {}: {}",
            p.mutant.function, p.mutant.replacement
        );
        let log = out_dir.join(format!("build-{}.log", p.mutant.function));
        let target = root.join("target").join(match engine {
            Engine::Stress => "mutants-patches",
            Engine::Libfuzzer => "mutants-patches-fuzz",
        });
        let result = super::cargo_build(&copy, &target, engine, None, &log, out).and_then(|bin| {
            // The next patch's build overwrites the binary: keep this one.
            let kept = bins.join(format!("{}-{}", p.mutant.function, engine.name()));
            std::fs::copy(&bin, &kept)
                .map(|_| kept)
                .map_err(|e| format!("{}: {e}", bin.display()))
        });
        built.insert(p.mutant.id, result);
    }
    // Leave the copy as the workspace is, so that a later run starts from it.
    sync(&root, &copy, true)?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_patch_is_loaded_with_its_summary_and_file() {
        let patches = load(&crate::corpus::root()).unwrap();
        assert!(patches.len() >= 6, "{}", patches.len());
        for p in &patches {
            assert_eq!(p.mutant.operator, "patch");
            assert!(!p.mutant.replacement.is_empty(), "{}", p.mutant.original);
            assert!(
                crate::corpus::root().join(&p.mutant.file).is_file(),
                "{}: {}",
                p.mutant.original,
                p.mutant.file
            );
        }
    }

    #[test]
    fn every_committed_patch_applies_to_todays_code() {
        let root = crate::corpus::root();
        for p in load(&root).unwrap() {
            let status = Command::new("patch")
                .args(["-p1", "--dry-run", "--batch", "--forward", "--silent", "-d"])
                .arg(&root)
                .arg("-i")
                .arg(&p.path)
                .status()
                .expect("patch runs");
            assert!(status.success(), "{} no longer applies", p.mutant.original);
        }
    }

    #[test]
    fn a_patch_without_a_summary_or_a_file_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("memslot-patches-{}", std::process::id()));
        let pd = dir.join(PATCH_DIR);
        std::fs::create_dir_all(&pd).unwrap();
        std::fs::write(pd.join("a.patch"), "--- a/x\n+++ b/x\n").unwrap();
        let e = load(&dir).unwrap_err();
        assert!(e.contains("a.patch:1") && e.contains("# <what"), "{e}");
        std::fs::write(pd.join("a.patch"), "# breaks x\nnot a diff\n").unwrap();
        let e = load(&dir).unwrap_err();
        assert!(e.contains("a.patch") && e.contains("+++ b/FILE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
