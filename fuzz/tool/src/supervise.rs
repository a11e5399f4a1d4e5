//! Child processes that die with the tool, however it dies.
//!
//! libFuzzer's fork mode starts its workers through `system()`: grandchildren of whoever
//! started the fuzzer. Killing the fuzzer leaves them running, and a parent-death signal only
//! reaches the direct child. So every fuzzer runs under a keeper: this same binary, run as
//! `memslot-diff supervise -- PROGRAM ARGS` in a process group of its own. The keeper starts
//! the program in that group and watches its standard input, a pipe whose other end only the
//! tool holds. The kernel closes that end when the tool exits or is killed, SIGKILL included;
//! the keeper then kills the whole group, workers and all. The tool stops a fuzzer early the
//! same way: by closing its end.

use std::ffi::OsString;
use std::fs::File;
use std::io::{PipeWriter, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A program running under a keeper.
pub struct Supervised {
    keeper: Child,
    /// The tool's end of the keeper's standard input: dropping it kills the program's group.
    lifeline: Option<PipeWriter>,
}

/// How a supervised program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status (128 + N when signal N killed it).
    Exited(i32),
    /// Its deadline passed, or the tool was told to stop: its group was killed.
    Killed,
}

impl Supervised {
    /// Start `command` (its program, arguments, environment and directory) under a keeper
    /// (`keeper_exe supervise -- ...`), its standard output and error to `log`.
    pub fn spawn(keeper_exe: &Path, command: &Command, log: &File) -> std::io::Result<Supervised> {
        let (reader, writer) = std::io::pipe()?;
        let mut keeper = Command::new(keeper_exe);
        keeper
            .arg("supervise")
            .arg("--")
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => keeper.env(key, value),
                None => keeper.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            keeper.current_dir(dir);
        }
        let keeper = keeper
            .stdin(reader)
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            // Out of the tool's group: a Ctrl-C or a kill of the tool's group reaches the
            // tool, whose death then reaches the keeper through the pipe.
            .process_group(0)
            .spawn()?;
        Ok(Supervised {
            keeper,
            lifeline: Some(writer),
        })
    }

    /// Wait until the program ends, `deadline` passes or `stop()` says so (checked every
    /// 100 ms), calling `tick` about once a second.
    pub fn wait(
        &mut self,
        deadline: Instant,
        stop: &dyn Fn() -> bool,
        tick: &mut dyn FnMut(),
    ) -> std::io::Result<Ended> {
        let start = Instant::now();
        let mut last_tick = start;
        loop {
            if let Some(status) = self.keeper.try_wait()? {
                return Ok(Ended::Exited(exit_code(status)));
            }
            if Instant::now() >= deadline || stop() {
                self.kill();
                return Ok(Ended::Killed);
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                tick();
            }
            std::thread::sleep(poll_interval(start.elapsed()));
        }
    }

    /// Kill the program's whole group and wait for the keeper.
    pub fn kill(&mut self) {
        self.lifeline = None;
        let _ = self.keeper.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long to sleep between looks at a child that has run for `elapsed`: about 2% of it,
/// from 1 ms (a replay of one input takes a few) to 100 ms (a fuzzer runs for minutes).
fn poll_interval(elapsed: Duration) -> Duration {
    (elapsed / 50).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// The exit status as a shell reports it: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The keeper (`memslot-diff supervise -- PROGRAM ARGS`): run the program in this process's
/// group, and kill the group when standard input reaches its end. Returns the program's exit
/// status, after killing whatever it left in the group.
pub fn keep(program: &PathBuf, args: &[OsString]) -> Result<i32, String> {
    // SAFETY: getpid/getpgid take no pointers.
    let group = unsafe { libc::getpgid(0) };
    if group != unsafe { libc::getpid() } {
        return Err("supervise: must lead its own process group (the tool starts it so)".into());
    }
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("supervise: {}: {e}", program.display()))?;
    let lifeline_closed = lifeline_watcher();
    let start = Instant::now();
    loop {
        if lifeline_closed.try_recv().is_ok() {
            kill_group_but_me(group);
            // SAFETY: kill with our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                kill_group_but_me(group);
                return Ok(exit_code(status));
            }
            Ok(None) => std::thread::sleep(poll_interval(start.elapsed())),
            Err(e) => return Err(format!("supervise: waiting for the program: {e}")),
        }
    }
}

/// A channel that receives once standard input reaches its end (or fails).
fn lifeline_watcher() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut byte = [0u8; 64];
        while matches!(stdin.read(&mut byte), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    rx
}

/// SIGKILL every other process of `group`, until none is left (a worker may be forking).
fn kill_group_but_me(group: libc::pid_t) {
    // SAFETY: getpid takes no pointers.
    let me = unsafe { libc::getpid() };
    for _ in 0..50 {
        let members = group_members(group);
        let others: Vec<_> = members.into_iter().filter(|&p| p != me).collect();
        if others.is_empty() {
            return;
        }
        for pid in others {
            // SAFETY: kill takes no pointers; the pid was in our group a moment ago, and a
            // zombie of our group keeps its pid until reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live (not zombie) processes whose process group is `group`, from /proc.
fn group_members(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat_state_and_group(&stat))
                .is_some_and(|(state, pgrp)| pgrp == group && state != 'Z')
        })
        .collect()
}

/// The state and process group fields of a /proc/PID/stat line (the command name, in
/// parentheses, may hold spaces: fields are counted after its closing parenthesis).
pub fn stat_state_and_group(stat: &str) -> Option<(char, libc::pid_t)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces() {
        let stat = "4242 (fuzz (worker) 1) S 4000 3999 3999 0 -1 4194560 100";
        assert_eq!(stat_state_and_group(stat), Some(('S', 3999)));
        assert_eq!(stat_state_and_group("garbage"), None);
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 128 + 9);
    }
}
