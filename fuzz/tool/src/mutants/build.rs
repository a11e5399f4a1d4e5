//! Building what an engine runs: from the mutant schemata, or from a patched copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Engine;

/// Write the schemata and build from them what `engine` runs (the command line tool, or the
/// shipped `differential` fuzz binary); returns the binary.
pub(super) fn build(
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
    let root = memslot_harness::corpus::root();
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
        false,
        &out_dir.join("build.log"),
    )
}

/// Build what `engine` runs from the workspace at `root` into `target`, with the C ports'
/// sources taken from `mutant_sources` first if given; the build's output goes to `log`.
/// `incremental` builds of a patched copy take about a second after the first (measured:
/// 0.7 s against 11 s without, one core change, both rebuild memslot-core and memslot-diff).
/// Returns the binary.
pub(crate) fn cargo_build(
    root: &Path,
    target: &Path,
    engine: Engine,
    mutant_sources: Option<&Path>,
    incremental: bool,
    log: &Path,
) -> Result<PathBuf, String> {
    let (mut command, binary) = match engine {
        Engine::Stress => {
            let mut command =
                Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            command.args([
                "build",
                "--release",
                "-p",
                "memslot-diff",
                "--bin",
                "memslot-diff",
            ]);
            (command, target.join("release").join("memslot-diff"))
        }
        Engine::Libfuzzer => {
            let mut command = crate::fuzz_build::cargo_fuzz();
            command
                .args(["build", "--sanitizer", "none", "--release", "--target-dir"])
                .arg(target)
                .arg("differential");
            let binary = target
                .join(crate::fuzz_build::host_triple())
                .join("release")
                .join("differential");
            (command, binary)
        }
    };
    if let Some(cc) = schemata_compiler() {
        command.env("CC", cc);
    }
    if incremental {
        // Only a patched copy's own target dir: the profile change rebuilds it once.
        command
            .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "0");
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

/// Say which C compiler the builds use, and warn when it is gcc.
pub(super) fn announce_compiler(out: &mut dyn Write) {
    match schemata_compiler() {
        Some(cc) => {
            let _ = writeln!(out, "==> C compiler: {}", cc.display());
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
}

/// The C compiler for the schemata build: clang (`clang-19`, then `clang` on PATH) unless
/// `CC` is set. clang gives a dropped initialization the -ftrivial-auto-var-init pattern; gcc
/// (measured with gcc 12) still optimizes the uninitialized read away, and the mutant with it.
fn schemata_compiler() -> Option<PathBuf> {
    if user_cc().is_some() {
        return None;
    }
    ["clang-19", "clang"]
        .iter()
        .find_map(|name| crate::fuzz_build::on_path(name))
}

/// `CC` when set to something (an empty `CC` counts as unset).
fn user_cc() -> Option<std::ffi::OsString> {
    std::env::var_os("CC").filter(|cc| !cc.is_empty())
}
