//! `memslot-diff nightly` end to end, with libFuzzer stood in for by a script that behaves like
//! a fuzz binary: in `-fork` mode it starts its workers through a shell (grandchildren of the
//! job, as libFuzzer's are), `-merge=1` keeps every input, and a single run replays an input
//! with `memslot-diff replay`, crashing (exit 1, the report on its output) where the real
//! binary would panic.
//!
//! * a SIGKILL of the job (of its process, or of its whole group) or a SIGTERM leaves no
//!   fuzzer process running, and the next job on the same cache is not blocked by its lock;
//! * a crash input becomes one minimized regression case that replays to its signature, and a
//!   second run knows it and leaves it alone.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOOL: &str = env!("CARGO_BIN_EXE_memslot-diff");

const FAKE_FUZZER: &str = r##"#!/bin/sh
# A stand-in for a libFuzzer fuzz binary (tests/nightly.rs).
last=$(for a in "$@"; do :; done; echo "$a")
prefix=$(for a in "$@"; do case $a in -artifact_prefix=*) echo "${a#-artifact_prefix=}" ;; esac; done)
case " $* " in
*" -merge=1 "*)
    # -merge=1 ... GENERATION WORK: keep every input.
    eval "generation=\${$(($# - 1))}"
    cp "$last"/* "$generation"/ 2>/dev/null
    exit 0 ;;
*" -fork="*)
    echo $$ >>"$FAKE_PIDS"
    echo "arch=$MEMSLOT_DIFF_ARCH" >>"$FAKE_PIDS.env"
    if [ "$FAKE_MODE" = hang ]; then
        # Workers as libFuzzer starts them: through system(), i.e. a shell.
        sh -c 'sleep 600 & echo $! >>"$0"; sleep 600 & echo $! >>"$0"; wait' "$FAKE_PIDS" &
        sh -c 'sleep 600 & echo $! >>"$0"; wait' "$FAKE_PIDS" &
        echo "#10: cov: 5 ft: 6 corp: 1 exec/s: 10 oom/timeout/crash: 0/0/0 time: 1s"
        wait
    fi
    [ -z "$FAKE_CRASH" ] || cp "$FAKE_CRASH" "${prefix}crash-0001"
    echo "#20: cov: 5 ft: 6 corp: 1 exec/s: 10 oom/timeout/crash: 0/0/0 time: 1s"
    exit 0 ;;
*" -minimize_crash=1 "*)
    for a in "$@"; do case $a in -exact_artifact_path=*) cp "$last" "${a#-exact_artifact_path=}" ;; esac; done
    exit 0 ;;
esac
# A single run of one input, as triage asks: crash on a divergence.
"$FAKE_TOOL" replay --bytes --target differential "$last"
"##;

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "memslot-diff-nightly-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("corpus/differential/seeds")).unwrap();
        std::fs::write(
            dir.join("corpus/differential/seeds/one.scenario"),
            "set id=1 gpa=0 size=4K hva=0x1000 flags=0\n",
        )
        .unwrap();
        let fuzzer = dir.join("bin/differential");
        std::fs::write(&fuzzer, FAKE_FUZZER).unwrap();
        std::fs::set_permissions(&fuzzer, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Scratch { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The nightly job over the fake fuzzer, with `env` added.
    fn nightly(&self, time: &str, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(TOOL);
        command
            .args([
                "nightly",
                "--targets",
                "differential",
                "--time",
                time,
                "--minimize-time",
                "5s",
                "--fuzz-bin-dir",
            ])
            .arg(self.path("bin"))
            .arg("--cache")
            .arg(self.path("cache"))
            .arg("--corpus-root")
            .arg(self.path("corpus"))
            .arg("--out")
            .arg(self.path("out"))
            .env("FAKE_PIDS", self.path("pids"))
            .env("FAKE_TOOL", TOOL)
            .env_remove("MEMSLOT_DIFF_PLANT")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `pid` is a live process (a zombie waiting for init to reap it is not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| memslot_diff::supervise::stat_state_and_group(&stat))
        .is_some_and(|(state, _)| state != 'Z')
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Clone, Copy, Debug)]
enum Death {
    /// SIGKILL of the job's process.
    Kill,
    /// SIGKILL of the job's whole process group (what a CI runner's timeout may do).
    KillGroup,
    /// SIGTERM: the job stops, exit 2.
    Term,
}

#[test]
fn no_fuzzer_outlives_the_job_however_it_dies() {
    for death in [Death::Kill, Death::KillGroup, Death::Term] {
        let scratch = Scratch::new(&format!("{death:?}").to_lowercase());
        let job = scratch
            .nightly("300s", &[("FAKE_MODE", "hang")])
            .process_group(0)
            .spawn()
            .unwrap();
        // The fuzzer and its three workers.
        wait_for("the fuzzer's workers", Duration::from_secs(60), || {
            scratch.pids().len() >= 4
        });
        let pids = scratch.pids();
        assert!(pids.iter().all(|&p| alive(p)), "{death:?}: {pids:?}");
        let pid = job.id() as i32;
        // SAFETY: kill takes no pointers.
        match death {
            Death::Kill => unsafe { libc::kill(pid, libc::SIGKILL) },
            Death::KillGroup => unsafe { libc::kill(-pid, libc::SIGKILL) },
            Death::Term => unsafe { libc::kill(pid, libc::SIGTERM) },
        };
        let output = job.wait_with_output().unwrap();
        if let Death::Term = death {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("interrupted"), "{stderr}");
        }
        wait_for(
            &format!("{death:?}: every fuzzer process to die"),
            Duration::from_secs(10),
            || pids.iter().all(|&p| !alive(p)),
        );

        // The next job on the same cache is not blocked, and clears what the dead one left.
        let _ = std::fs::remove_file(scratch.path("pids"));
        let output = scratch.nightly("2s", &[]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{death:?}: {stderr}");
        assert!(stderr.contains("nothing new (exit 0)"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(scratch.path("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("run."))
            .collect();
        assert!(
            left.is_empty(),
            "{death:?}: scratch directories left: {left:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(scratch.path("out/summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["targets"][0]["status"], "ok");
        assert_eq!(summary["targets"][0]["executions"], 20);
        assert_eq!(
            summary["targets"][0]["corpus_after"], 1,
            "the merge kept the seed"
        );
    }
}

/// A program on which the `stale-lru` zoo bug diverges, in the differential target's bytes.
fn zoo_crash(scratch: &Scratch) -> PathBuf {
    let found = scratch.path("found");
    let status = Command::new(TOOL)
        .args([
            "stress",
            "--zoo",
            "stale-lru",
            "--seed",
            "2",
            "--iters",
            "3000",
            "--out",
        ])
        .arg(&found)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "stress found no stale-lru divergence"
    );
    let scenario = std::fs::read_dir(&found)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = scratch.path("crash.bin");
    let status = Command::new(TOOL)
        .args(["encode", "--target", "differential"])
        .arg(&scenario)
        .arg(&bytes)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    bytes
}

fn regressions(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_crash_becomes_one_minimized_regression_stored_once() {
    let scratch = Scratch::new("triage");
    let crash = zoo_crash(&scratch);
    let env = [
        ("MEMSLOT_DIFF_ZOO", "stale-lru"),
        ("FAKE_CRASH", crash.to_str().unwrap()),
    ];
    let output = scratch.nightly("2s", &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let stored = regressions(&scratch.path("corpus/differential/regressions"));
    assert_eq!(stored.len(), 1, "{stderr}");
    let file = &stored[0];
    let sig = file.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "# note: target=differential signature={sig} found="
        )),
        "{text}"
    );
    assert!(
        lines[1].starts_with("# found by memslot-diff nightly; "),
        "{text}"
    );
    assert!(lines[1].contains("by memslot-diff minimize"), "{text}");
    let operations = lines.iter().filter(|l| !l.starts_with('#')).count();
    assert!(
        (1..=20).contains(&operations),
        "not minimized: {operations} operations\n{text}"
    );
    // It replays to the signature it is named after, as cargo test will replay it.
    let replay = Command::new(TOOL)
        .args(["replay", "--zoo", "stale-lru"])
        .arg(file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{report}");
    assert!(report.contains(&format!("  signature: {sig} ")), "{report}");
    let summary = std::fs::read_to_string(scratch.path("out/summary.md")).unwrap();
    assert!(
        summary.contains(&format!("| 1 | {sig} | - | 0 |")),
        "{summary}"
    );

    // A second run finds the same crash: known, not stored again, the file untouched.
    let output = scratch.nightly("2s", &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{sig} is a known signature")),
        "{stderr}"
    );
    assert_eq!(
        regressions(&scratch.path("corpus/differential/regressions")),
        stored
    );
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);
}

#[test]
fn bad_usage_exits_2_naming_the_problem() {
    for (args, says) in [
        (&["--time", "5x"][..], "bad duration '5x'"),
        (&["--targets", "nope"], "unknown target 'nope'"),
        (&["--workers", "0"], "--workers"),
        (&["--sanitizer", "memory"], "unknown --sanitizer 'memory'"),
        (&["--bogus"], "--bogus"),
        (
            &["--corpus-root", "/nonexistent"],
            "/nonexistent: no such directory",
        ),
    ] {
        let output = Command::new(TOOL)
            .arg("nightly")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn an_arch_profile_reaches_the_fuzzers_and_has_a_corpus_of_its_own() {
    let scratch = Scratch::new("arch");
    let mut command = scratch.nightly("2s", &[]);
    command.args(["--arch", "x86-32k"]);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let seen = std::fs::read_to_string(scratch.path("pids.env")).unwrap();
    assert_eq!(seen.trim(), "arch=x86-32k");
    let link = scratch.path("cache/corpus/differential.x86-32k");
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_symlink()),
        "{stderr}"
    );
    assert!(!scratch.path("cache/corpus/differential").exists());
    let summary = std::fs::read_to_string(scratch.path("out/summary.md")).unwrap();
    assert!(
        summary.contains("sanitizer none, arch x86-32k."),
        "{summary}"
    );
}
