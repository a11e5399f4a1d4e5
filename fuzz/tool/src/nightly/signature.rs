//! What the nightly job reads from a fuzz binary's output: the signature of a crash, and
//! libFuzzer's running figures.

/// The signature of a crash from the fuzz binary's output when it replayed the input: the
/// divergence report's `signature:` line (`array.move.core`); else the sanitizer's kind, a
/// panic's place, a timeout or out-of-memory, with the first stack frame in the project's
/// own code (`asan-heap-buffer-overflow.search_memslots`, `panic.memslots.rs-212`).
/// Filename-safe: `[A-Za-z0-9_.-]`.
pub fn crash_signature(log: &str) -> String {
    if let Some(sig) = log.lines().find_map(|l| {
        l.strip_prefix("  signature: ")
            .and_then(|rest| rest.split_whitespace().next())
    }) {
        return sig.to_string();
    }
    let kind = if let Some(kind) = log.lines().find_map(sanitizer_kind) {
        format!("asan-{kind}")
    } else if let Some(panic) = log.lines().find_map(panic_place) {
        return safe(&format!("panic.{panic}"));
    } else if log.contains("ALARM: working on the last Unit") || log.contains("libFuzzer: timeout")
    {
        "timeout".to_string()
    } else if log.contains("out-of-memory") {
        "oom".to_string()
    } else {
        "crash".to_string()
    };
    let frame = log
        .lines()
        .find_map(project_frame)
        .unwrap_or_else(|| "unknown".to_string());
    safe(&format!("{kind}.{frame}"))
}

/// `ERROR: AddressSanitizer: heap-buffer-overflow on ...` -> `heap-buffer-overflow` (and
/// the same of UndefinedBehavior-, Memory- and LeakSanitizer).
fn sanitizer_kind(line: &str) -> Option<String> {
    let at = line.find("ERROR: ")?;
    let rest = &line[at + "ERROR: ".len()..];
    let (tool, rest) = rest.split_once(": ")?;
    if !["Address", "UndefinedBehavior", "Memory", "Leak"]
        .iter()
        .any(|t| tool == format!("{t}Sanitizer"))
    {
        return None;
    }
    let kind: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
        .collect();
    (!kind.is_empty()).then_some(kind)
}

/// `thread '<unnamed>' panicked at core/src/memslots.rs:212:9:` -> `memslots.rs-212`.
fn panic_place(line: &str) -> Option<String> {
    let rest = &line[line.find("panicked at ")? + "panicked at ".len()..];
    let mut parts = rest.splitn(3, ':');
    let file = parts.next()?;
    let line_no = parts.next()?;
    if line_no.is_empty() || !line_no.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let base = file.rsplit('/').next().unwrap_or(file);
    Some(format!("{base}-{line_no}"))
}

/// A stack frame line (`    #3 0x55d1 in search_memslots /src/reference/c/post/...`) in the
/// project's own code (the C ports, the core, the harness; not the fuzz entry point) -> the
/// function's last path segment, without Rust's hash.
fn project_frame(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    let rest = trimmed.strip_prefix('#')?;
    let (number, rest) = rest.split_once(' ')?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start().strip_prefix("0x")?;
    let (_, rest) = rest.split_once(" in ")?;
    if !["/reference/", "/core/", "/fuzz/"]
        .iter()
        .any(|dir| rest.contains(dir))
        || rest.contains("/fuzz/harness/src/targets.rs")
    {
        return None;
    }
    let function = rest.split_whitespace().next()?;
    let function = match function.rfind("::h") {
        Some(at)
            if function.len() - at == 19
                && function[at + 3..].chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            &function[..at]
        }
        _ => function,
    };
    Some(function.rsplit("::").next().unwrap_or(function).to_string())
}

/// Every character outside `[A-Za-z0-9_.-]` becomes `-`.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// libFuzzer's figures from its last status line (`#4399: cov: 1507 ft: 9299 corp: 591
/// exec/s: 733 oom/timeout/crash: 0/0/2 time: 6s ...`, as -fork mode prints them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuzzerStats {
    pub executions: u64,
    pub edges: u64,
    pub features: u64,
    pub corpus: u64,
    pub exec_per_sec: u64,
    /// OOMs, timeouts and crashes together.
    pub failures: u64,
}

impl FuzzerStats {
    /// The figures of the last status line in `log`, if any.
    pub fn last_in(log: &str) -> Option<FuzzerStats> {
        log.lines().rev().find_map(FuzzerStats::parse)
    }

    fn parse(line: &str) -> Option<FuzzerStats> {
        let rest = line.strip_prefix('#')?;
        let (executions, rest) = rest.split_once(": ")?;
        let executions = executions.parse().ok()?;
        let mut stats = FuzzerStats {
            executions,
            ..FuzzerStats::default()
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.first() != Some(&"cov:") {
            return None;
        }
        for pair in words.chunks(2) {
            let [key, value] = pair else { break };
            match *key {
                "cov:" => stats.edges = value.parse().ok()?,
                "ft:" => stats.features = value.parse().ok()?,
                "corp:" => stats.corpus = value.split('/').next()?.parse().ok()?,
                "exec/s:" => stats.exec_per_sec = value.parse().ok()?,
                "oom/timeout/crash:" => {
                    stats.failures = value
                        .split('/')
                        .map(|n| n.parse::<u64>().ok())
                        .sum::<Option<u64>>()?;
                }
                _ => {}
            }
        }
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_divergence_is_named_by_its_report() {
        let log =
            "INFO: Seed: 1\nthread '<unnamed>' panicked at fuzz/harness/src/targets.rs:77:9:\n\
                   memslot-diff: the implementations DIVERGE\n  \
                   signature: array.move.core  (disagreeing: core)\n";
        assert_eq!(crash_signature(log), "array.move.core");
    }

    #[test]
    fn a_sanitizer_report_by_kind_and_first_project_frame() {
        let log = "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020\n\
                   READ of size 8 at 0x6020 thread T0\n\
                   \x20   #0 0x55d1 in __sanitizer_print_stack_trace /llvm/compiler-rt/x.cpp:1\n\
                   \x20   #1 0x55d2 in search_memslots /src/memslot-diff/reference/c/post15/kvm_host.h:310:7\n\
                   \x20   #2 0x55d3 in memslot_harness::targets::fuzz::h0123456789abcdef /src/memslot-diff/fuzz/harness/src/targets.rs:40\n";
        assert_eq!(
            crash_signature(log),
            "asan-heap-buffer-overflow.search_memslots"
        );
        let ubsan = "x.c:3:5: runtime error: index 512 out of bounds\n\
                     SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior\n\
                     ==1==ERROR: UndefinedBehaviorSanitizer: SEGV on unknown address\n";
        assert_eq!(crash_signature(ubsan), "asan-SEGV.unknown");
    }

    #[test]
    fn a_panic_by_file_and_line_and_rust_frames_without_their_hash() {
        let log =
            "thread '<unnamed>' panicked at core/src/memslots.rs:212:9:\nindex out of bounds\n";
        assert_eq!(crash_signature(log), "panic.memslots.rs-212");
        let frame = "    #4 0x1 in memslot_core::memslots::Memslots::update::h0123456789abcdef /w/core/src/memslots.rs:9";
        assert_eq!(project_frame(frame).as_deref(), Some("update"));
        assert_eq!(
            project_frame("    #4 0x1 in libc_start /usr/lib/libc.so"),
            None
        );
    }

    #[test]
    fn timeouts_ooms_and_anything_else() {
        assert_eq!(
            crash_signature("ALARM: working on the last Unit for 61 seconds\n"),
            "timeout.unknown"
        );
        assert_eq!(
            crash_signature("==9== ERROR: libFuzzer: out-of-memory (used: 2100Mb)\n"),
            "oom.unknown"
        );
        assert_eq!(crash_signature("Segmentation fault\n"), "crash.unknown");
    }

    #[test]
    fn stats_of_the_last_status_line() {
        let log = "#100: cov: 10 ft: 20 corp: 3 exec/s: 5 oom/timeout/crash: 0/0/0 time: 1s\n\
                   INFO: something\n\
                   #29914: cov: 1029 ft: 2782 corp: 89 exec/s: 1424 oom/timeout/crash: 1/2/195 time: 21s job: 9 dft_time: 0\n\
                   INFO: exiting: 77 time: 21s\n";
        assert_eq!(
            FuzzerStats::last_in(log),
            Some(FuzzerStats {
                executions: 29914,
                edges: 1029,
                features: 2782,
                corpus: 89,
                exec_per_sec: 1424,
                failures: 198,
            })
        );
        assert_eq!(FuzzerStats::last_in("#5\tINITED cov: 3\n"), None);
        // The single-process form: `#4399\tNEW    cov: ...` is not a fork-mode status line.
        assert_eq!(
            FuzzerStats::last_in("#4399\tpulse  cov: 1507 ft: 9299\n"),
            None
        );
    }
}
