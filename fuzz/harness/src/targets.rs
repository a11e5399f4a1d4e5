//! The fuzz targets' entry points, shared by `fuzz_targets/*.rs`, the `replay` command and the
//! tests, so that every one of them decodes and checks an input in exactly the same way.
//!
//! * `differential`: everything: layouts, moves, deletes, dirty logging, private slots, both
//!   address spaces, lookups, id queries, raw requests.
//! * `lookups`: layouts plus dense lookups (edges, gaps, raw GFNs) and id queries.
//! * `requests`: raw request fields from validation edge values (validation order, errno).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::report::{render, Context};
use crate::runner::Stats;
pub use crate::target::Target;
use crate::zoo::run;
use crate::{scenario, zoo};
use sha1::{Digest, Sha1};

/// Decode and check an input; on divergence, the rendered report.
pub fn check(target: Target, data: &[u8], ctx: &Context) -> Result<Stats, String> {
    let program = target.decode(data);
    let result = run(&program.ops);
    match result.divergence {
        None => Ok(result.stats),
        Some(d) => Err(render(&d, ctx)),
    }
}

/// What a fuzz target does with an input: decode, run every implementation, and panic with the
/// divergence report if they disagree. The scenario text is also written next to the crash
/// artifact libFuzzer is about to save (`<artifact_prefix>crash-<sha1>.scenario`), so that the
/// report's replay command works as printed.
pub fn fuzz(target: Target, data: &[u8]) {
    if let Some(profile) = crate::profile::env_profile() {
        let agreed = profile.lock().is_ok_and(|mut p| p.record(target, data));
        if agreed {
            return;
        }
        // A divergence: run again below, unprofiled, to report it as usual.
    }
    let program = target.decode(data);
    let result = run(&program.ops);
    log_new_kinds(&result.stats);
    if let Some(d) = result.divergence {
        let mut ctx = Context {
            target: Some(target.name().to_string()),
            ..Context::default()
        };
        let args: Vec<String> = std::env::args().collect();
        let prefix = args
            .iter()
            .find_map(|a| a.strip_prefix("-artifact_prefix="))
            .unwrap_or("");
        let artifact = format!("{prefix}crash-{:x}", Sha1::digest(data));
        ctx.input = Some(format!("{artifact} (libFuzzer saves the input there)"));
        // Minimizing re-runs crashing inputs many times: don't litter.
        let minimizing = args
            .iter()
            .any(|a| a.starts_with("-minimize_crash=1") || a.starts_with("-merge="));
        if !minimizing {
            let file = format!("{artifact}.scenario");
            let text = format!(
                "# divergence found by fuzz target `{}`; artifact {artifact}\n{}",
                target.name(),
                scenario::print_at(zoo::selected().arch(), &d.ops)
            );
            if std::fs::write(&file, text).is_ok() {
                ctx.replay =
                    Some(Context::replay_command(&file, None) + &zoo::selected().replay_args());
            }
        }
        if ctx.replay.is_none() {
            ctx.replay = Some(
                Context::replay_command(&artifact, Some(target.name()))
                    + &zoo::selected().replay_args(),
            );
        }
        panic!("\n{}", render(&d, &ctx));
    }
}

/// With `MEMSLOT_DIFF_KINDS_LOG=FILE`, appends `SECONDS AS KIND` to FILE the first time a
/// fuzzing process performs each kind of operation in each address space (seconds since its
/// first input): how long the fuzzer takes to reach every kind (`ci/op-kinds-timeline`).
fn log_new_kinds(stats: &Stats) {
    struct KindsLog {
        file: std::fs::File,
        start: std::time::Instant,
        seen: u32,
    }
    static LOG: OnceLock<Option<Mutex<KindsLog>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let path = std::env::var_os("MEMSLOT_DIFF_KINDS_LOG")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok()?;
        let start = std::time::Instant::now();
        Some(Mutex::new(KindsLog {
            file,
            start,
            seen: 0,
        }))
    });
    let Some(log) = log else { return };
    let Ok(mut log) = log.lock() else { return };
    let new = stats.kinds & !log.seen;
    if new == 0 {
        return;
    }
    log.seen |= new;
    for kind in Stats::kind_list(new) {
        let line = format!(
            "{:.3} {} {}\n",
            log.start.elapsed().as_secs_f64(),
            kind.0,
            kind.1.name()
        );
        let _ = log.file.write_all(line.as_bytes());
    }
}

/// AddressSanitizer's defaults in the fuzz targets (`ASAN_OPTIONS` still overrides them): a
/// quarantine of 32 MiB instead of 256 MiB. The C ports allocate and free a whole
/// `struct kvm_memslots` (about 30 KiB) per request, as the kernel does, so the default
/// quarantine fills in seconds and then holds a quarter of a gigabyte of freed arrays; 32 MiB
/// still keeps the last thousand of them poisoned, far more than any use after free in one
/// request or one program can reach back.
#[cfg(fuzzing)]
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::os::raw::c_char {
    c"quarantine_size_mb=32".as_ptr()
}

/// `fuzz_target!(|data: &[u8]| memslot_harness::targets::differential(data));`
pub fn differential(data: &[u8]) {
    fuzz(Target::Differential, data)
}

/// `fuzz_target!(|data: &[u8]| memslot_harness::targets::lookups(data));`
pub fn lookups(data: &[u8]) {
    fuzz(Target::Lookups, data)
}

/// `fuzz_target!(|data: &[u8]| memslot_harness::targets::requests(data));`
pub fn requests(data: &[u8]) {
    fuzz(Target::Requests, data)
}
