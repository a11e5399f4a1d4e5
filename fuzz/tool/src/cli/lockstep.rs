//! Options shared by the commands that run programs: how inputs decode (`--target`,
//! `--text`, `--bytes`) and which implementations run in lockstep (`--zoo`, `--fixed`,
//! `--variant`, `--arch`, `--generator`).

use clap::Args;

use memslot_harness::corpus::Format;
use memslot_harness::scenario;
use memslot_harness::targets::Target;
use memslot_harness::zoo::{Generator, Lockstep};
use memslot_harness::ArchProfile;

/// A fuzz target name, for clap.
pub fn parse_target(name: &str) -> Result<Target, String> {
    Target::from_name(name).ok_or_else(|| {
        format!("unknown target '{name}' (expected differential, lookups or requests)")
    })
}

/// A number as scenario text spells it (decimal, `0x` hex, `K`/`M`/`G` suffixes), for clap.
pub fn parse_number(text: &str) -> Result<u64, String> {
    scenario::parse_u64(text, false).map_err(|why| format!("bad number '{text}': {why}"))
}

/// A duration (`30s`, `5m`, `1h`, `500ms`), for clap.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_duration(text)
}

#[derive(Args, Debug)]
pub struct InputArgs {
    /// How fuzz artifacts decode: differential, lookups or requests (default: from the path,
    /// corpus/<target>/... or artifacts/<target>/..., else differential)
    #[arg(long, value_name = "T", value_parser = parse_target)]
    pub target: Option<Target>,
    /// Read every file as scenario text
    #[arg(long, conflicts_with = "bytes")]
    pub text: bool,
    /// Read every file as a fuzz artifact (bytes)
    #[arg(long)]
    pub bytes: bool,
}

impl InputArgs {
    /// The format the user forced, if any (else detected per file).
    pub fn format(&self) -> Option<Format> {
        match (self.text, self.bytes) {
            (true, _) => Some(Format::Text),
            (_, true) => Some(Format::Bytes),
            _ => None,
        }
    }
}

#[derive(Args, Debug)]
pub struct LockstepArgs {
    /// Compare core, tree and oracle with this zoo bug's state instead of the standard set
    #[arg(long, value_name = "BUG")]
    pub zoo: Option<String>,
    /// With --zoo: the zoo bug's fixed state
    #[arg(long, requires = "zoo")]
    pub fixed: bool,
    /// Add your own variant of a port (built with MEMSLOT_VARIANT=STATE:DIR)
    #[arg(long, conflicts_with = "zoo")]
    pub variant: bool,
    /// Run at this arch profile: x86-512 (default) or x86-32k (today's 32,764 user slots).
    /// Not with --zoo or --variant: those locksteps have their own profile (a variant of
    /// modern_32k runs at x86-32k)
    #[arg(long, value_name = "A", conflicts_with_all = ["zoo", "variant"])]
    pub arch: Option<String>,
    /// The program generator: steered (default) or random (the eval baseline's)
    #[arg(long, value_name = "G")]
    pub generator: Option<String>,
}

impl LockstepArgs {
    /// The implementations to compare and the generator to draw programs with (default:
    /// `MEMSLOT_DIFF_ZOO` and `MEMSLOT_DIFF_GENERATOR`, else the standard set and the steered
    /// generator). Fuzz artifacts are decoded as the environment says, as the fuzzer that
    /// wrote them did.
    pub fn lockstep(&self) -> Result<(Lockstep, Generator), String> {
        let lockstep = match (&self.zoo, &self.arch) {
            (Some(name), _) => {
                let bug = memslot_harness::zoo::bug(name).ok_or_else(|| {
                    format!(
                        "unknown zoo bug '{name}' (known: {})",
                        memslot_harness::zoo::bug_names()
                    )
                })?;
                Lockstep::Zoo {
                    bug,
                    fixed: self.fixed,
                }
            }
            _ if self.variant => Lockstep::with_variant().map_err(|e| format!("--variant: {e}"))?,
            (None, Some(name)) => {
                Lockstep::at(ArchProfile::parse(name).map_err(|e| format!("--arch: {e}"))?)
            }
            (None, None) => Lockstep::from_env()?,
        };
        let generator = match &self.generator {
            Some(name) => Generator::parse(name)?,
            None => Generator::from_env()?,
        };
        Ok((lockstep, generator))
    }
}
