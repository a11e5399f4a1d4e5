//! The two cargo-fuzz builds (docs/fuzz-build.md) and how to make them: the toolchain
//! cargo-fuzz runs on, the build command, where its binaries land. Shared by `nightly`, `eval`
//! and `mutants`; `ci/lib.sh` (`select_fuzz_toolchain`, `select_fuzz_build`) says the same for
//! the shell scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A libFuzzer build of the fuzz targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FuzzBuild {
    /// `cargo fuzz build -s none`: the shipped build, no AddressSanitizer (the C ports'
    /// out-of-bounds accesses are caught by the shim's guard pages instead).
    Shipped,
    /// `cargo fuzz build -s address --target-dir target/fuzz-asan`: AddressSanitizer on Rust
    /// and C, what OSS-Fuzz builds; a target directory of its own so that the two builds do
    /// not rebuild each other.
    Asan,
}

impl FuzzBuild {
    /// The sanitizer names of `--sanitizer`.
    pub const SANITIZERS: [&'static str; 2] = ["none", "address"];

    pub fn from_sanitizer(name: &str) -> Option<FuzzBuild> {
        match name {
            "none" => Some(FuzzBuild::Shipped),
            "address" => Some(FuzzBuild::Asan),
            _ => None,
        }
    }

    pub fn sanitizer(self) -> &'static str {
        match self {
            FuzzBuild::Shipped => "none",
            FuzzBuild::Asan => "address",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            FuzzBuild::Shipped => "the shipped build (no AddressSanitizer)",
            FuzzBuild::Asan => "the AddressSanitizer build",
        }
    }

    /// The command a person types to make this build of `targets`.
    pub fn build_command(self, targets: &str) -> String {
        match self {
            FuzzBuild::Shipped => format!("cargo +nightly fuzz build -s none {targets}"),
            FuzzBuild::Asan => format!(
                "cargo +nightly fuzz build -s address --target-dir target/fuzz-asan {targets}"
            ),
        }
    }

    /// The target directory of this build under the repository `root`.
    fn target_dir(self, root: &Path) -> PathBuf {
        match self {
            FuzzBuild::Shipped => root.join("target"),
            FuzzBuild::Asan => root.join("target").join("fuzz-asan"),
        }
    }

    /// Where `cargo fuzz build` leaves this build's binaries.
    pub fn bin_dir(self, root: &Path) -> PathBuf {
        self.target_dir(root).join(host_triple()).join("release")
    }

    /// `cargo fuzz build` of `targets` in this build, from the repository `root`, with the
    /// fuzz package's `features`.
    pub fn command(self, root: &Path, targets: &[&str], features: &[&str]) -> Command {
        let mut command = cargo_fuzz();
        command
            .current_dir(root)
            .args(["build", "--sanitizer", self.sanitizer()]);
        if self == FuzzBuild::Asan {
            command.arg("--target-dir").arg(self.target_dir(root));
        }
        if !features.is_empty() {
            command.arg("--features").arg(features.join(","));
        }
        command.args(targets);
        command
    }

    /// Whether `binary` is this build: linked with AddressSanitizer's runtime or not.
    pub fn matches(self, binary: &Path) -> Result<bool, String> {
        let bytes = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let needle = b"__asan_init\0";
        let asan = bytes.windows(needle.len()).any(|w| w == needle);
        Ok(asan == (self == FuzzBuild::Asan))
    }
}

/// `cargo fuzz` on a toolchain it can use: nightly when installed, else stable with
/// `RUSTC_BOOTSTRAP=1`.
pub fn cargo_fuzz() -> Command {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut command = Command::new("cargo");
    if nightly {
        command.arg("+nightly");
    } else {
        command.env("RUSTC_BOOTSTRAP", "1");
    }
    command.arg("fuzz");
    command
}

/// Whether `cargo fuzz` runs at all.
pub fn cargo_fuzz_installed() -> bool {
    cargo_fuzz()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The host's target triple, as `rustc -vV` says (cargo-fuzz builds for it); asked once.
pub fn host_triple() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        Command::new("rustc")
            .arg("-vV")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            })
            .unwrap_or_else(|| "x86_64-unknown-linux-gnu".to_string())
    })
    .clone()
}

/// The first file `name` in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
