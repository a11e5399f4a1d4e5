//! Patch mutants: multi-line, sequence-dependent bugs written by hand as unified diffs in
//! `ci/mutant-patches/*.patch`, in any of the code under test (the C ports, the core's array
//! and tree backends). Each is applied to a copy of the workspace, built on its own and run
//! like a schemata mutant. A patch that no longer applies is an error naming it: the list is
//! kept in step with the code, as the equivalent list is. The core's cargo-mutants mutants
//! ([`super::cargo_mutants`]) are built the same way.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::c::Mutant;
use super::{Engine, Status};

/// Where the patches live, relative to the repository root.
pub const PATCH_DIR: &str = "ci/mutant-patches";

/// Mutant ids of patches start here, past any schemata id.
const FIRST_ID: usize = 1_000_000;

/// One patch mutant.
#[derive(Clone, Debug)]
pub struct Patch {
    pub mutant: Mutant,
    /// The patch text, shown for a survivor.
    pub text: String,
    pub apply: Apply,
}

/// How a patch is applied to the copy of the workspace, and what a build failure means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// A committed patch (`patch -p1`, `a/` and `b/` paths): a build failure is a bug of
    /// the patch.
    Committed,
    /// A generated mutant of one file (its diff's headers are not paths): a build failure
    /// means the compiler rejects it, cargo-mutants' "unviable".
    Generated { file: String },
}

/// `patch` over `text` in `dir`, `args` first; whether it applied.
pub(super) fn apply(dir: &Path, args: &[&str], text: &str) -> Result<bool, String> {
    let mut child = Command::new("patch")
        .args([
            "--batch",
            "--forward",
            "--silent",
            "--no-backup-if-mismatch",
            "-d",
        ])
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not run patch (install it: apt-get install patch): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("patch: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("patch: {e}"))?;
    Ok(status.success())
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
            text,
            apply: Apply::Committed,
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

/// What a patch build gave: the binary, or the status and why.
pub type Built = BTreeMap<usize, Result<PathBuf, (Status, String)>>;

/// Apply each patch to a copy of the workspace under `out_dir/patched` and build what the
/// engine runs. Returns, per mutant id, the binary or why the build failed. A patch that
/// does not apply is an error.
pub fn build_all(
    patches: &[&Patch],
    engine: Engine,
    out_dir: &Path,
    out: &mut dyn Write,
) -> Result<Built, String> {
    let root = memslot_harness::corpus::root();
    let copy = out_dir.join("patched");
    let bins = out_dir.join("patch-bins");
    std::fs::create_dir_all(&bins).map_err(|e| format!("{}: {e}", bins.display()))?;
    let target = root.join("target").join(match engine {
        Engine::Stress => "mutants-patches",
        Engine::Libfuzzer => "mutants-patches-fuzz",
    });
    let generated = patches
        .iter()
        .filter(|p| p.apply != Apply::Committed)
        .count();
    if generated > 0 {
        let _ = writeln!(
            out,
            "==> building {generated} generated mutant(s) of the core one by one (incremental, target dir {})",
            target.display()
        );
    }
    let mut built = BTreeMap::new();
    let mut done = 0;
    for p in patches {
        sync(&root, &copy, true)?;
        let applied = match &p.apply {
            Apply::Committed => apply(&copy, &["-p1"], &p.text)?,
            Apply::Generated { file } => apply(&copy, &[file.as_str()], &p.text)?,
        };
        if !applied {
            return Err(format!(
                "{}: does not apply to today's code any more; update it (git diff in a checkout with the change)",
                p.mutant.original
            ));
        }
        let name = match p.apply {
            Apply::Committed => {
                let _ = writeln!(
                    out,
                    "==> patch {}: {}",
                    p.mutant.function, p.mutant.replacement
                );
                p.mutant.function.clone()
            }
            Apply::Generated { .. } => {
                done += 1;
                if done % 50 == 0 || done == generated {
                    let _ = writeln!(out, "  built {done}/{generated}");
                }
                format!("core-{}", p.mutant.id)
            }
        };
        let log = out_dir.join(format!("build-{name}.log"));
        let result = super::cargo_build(&copy, &target, engine, None, true, &log)
            .and_then(|bin| {
                // The next patch's build overwrites the binary: keep this one.
                let kept = bins.join(format!("{name}-{}", engine.name()));
                std::fs::copy(&bin, &kept)
                    .map(|_| kept)
                    .map_err(|e| format!("{}: {e}", bin.display()))
            })
            .map_err(|why| match p.apply {
                Apply::Committed => (Status::BuildFailed, why),
                Apply::Generated { .. } => {
                    let _ = std::fs::remove_file(&log);
                    (Status::Unviable, first_error(&why))
                }
            });
        built.insert(p.mutant.id, result);
    }
    // Leave the copy as the workspace is, so that a later run starts from it.
    sync(&root, &copy, true)?;
    Ok(built)
}

/// The compiler's first error line of a failed build's message.
fn first_error(why: &str) -> String {
    why.lines()
        .next()
        .and_then(|l| l.split_once("): ").map(|(_, e)| e.to_string()))
        .unwrap_or_else(|| why.lines().next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_patch_is_loaded_with_its_summary_and_file() {
        let patches = load(&memslot_harness::corpus::root()).unwrap();
        assert!(patches.len() >= 6, "{}", patches.len());
        for p in &patches {
            assert_eq!(p.mutant.operator, "patch");
            assert!(!p.mutant.replacement.is_empty(), "{}", p.mutant.original);
            assert!(
                memslot_harness::corpus::root()
                    .join(&p.mutant.file)
                    .is_file(),
                "{}: {}",
                p.mutant.original,
                p.mutant.file
            );
        }
    }

    #[test]
    fn every_committed_patch_applies_to_todays_code() {
        let root = memslot_harness::corpus::root();
        for p in load(&root).unwrap() {
            let applies = apply(&root, &["-p1", "--dry-run"], &p.text).expect("patch runs");
            assert!(applies, "{} no longer applies", p.mutant.original);
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
