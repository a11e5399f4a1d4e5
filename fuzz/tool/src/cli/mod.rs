//! The `memslot-diff` command line (`cargo memslot-diff ...`): one clap subcommand per job,
//! each with its own `--help`.
//!
//! Exit status: 0 when every implementation agrees (or the command succeeded), 1 on a
//! divergence (or, for `nightly`, new failures stored), 2 on bad input or usage.

mod inputs;
mod lockstep;
mod runs;

use std::io::Write;

use clap::{Parser, Subcommand};

pub use lockstep::{parse_duration, parse_number, parse_target, InputArgs, LockstepArgs};

const AFTER_HELP: &str = "\
zoo bugs (--zoo; MEMSLOT_DIFF_ZOO=BUG[:fixed] for the fuzz targets): stale-lru, empty-array,
  below-lowest, below-lowest-full, prepare-invalid, update-absent-id.
arch profiles (--arch; MEMSLOT_DIFF_ARCH for the fuzz targets): x86-512 (the default: 509 user
  + 3 private slots, v5.6-v5.11), x86-32k (32,764 + 3, v5.12 onward).

exit status: 0 all implementations agree, 1 divergence (nightly: new failures stored), 2 bad
  input or usage";

/// Differential fuzzing of KVM memslot management: memslot-core, literal C ports of
/// kvm_main.c and an oracle model in lockstep.
#[derive(Parser)]
#[command(name = "memslot-diff", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Replay(inputs::Replay),
    Fmt(inputs::Fmt),
    Encode(inputs::Encode),
    Minimize(inputs::Minimize),
    Generate(inputs::Generate),
    Stress(runs::Stress),
    SeedCorpus(runs::SeedCorpus),
    Throughput(runs::Throughput),
    Eval(crate::eval::EvalArgs),
    Mutants(crate::mutants::MutantsArgs),
    Nightly(crate::nightly::NightlyArgs),
    /// Run PROGRAM in this process's group and kill the group when standard input closes:
    /// the keeper `nightly` runs every fuzzer under (see the supervise module).
    #[command(hide = true)]
    Supervise {
        program: std::path::PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// Run the command with `args` (without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    // Not locked for the whole command: the progress bar's thread writes to stderr too.
    run_with(args, &mut std::io::stdout(), &mut std::io::stderr())
}

/// [`run`] with explicit output streams (for tests).
pub fn run_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(
        std::iter::once("memslot-diff").chain(args.iter().map(String::as_str)),
    ) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; a usage error is bad input.
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                2
            } else {
                let _ = write!(out, "{text}");
                0
            };
        }
    };
    let result = match cli.command {
        Command::Replay(a) => inputs::replay(a, out, err),
        Command::Fmt(a) => inputs::fmt(a, out),
        Command::Encode(a) => inputs::encode(a, out),
        Command::Minimize(a) => inputs::minimize(a, out, err),
        Command::Generate(a) => inputs::generate(a, out),
        Command::Stress(a) => runs::stress(a, out),
        Command::SeedCorpus(a) => runs::seed_corpus(a, out),
        Command::Throughput(a) => runs::throughput(a, out),
        Command::Eval(a) => crate::eval::command(a, out),
        Command::Mutants(a) => crate::mutants::command(a, out),
        Command::Nightly(a) => crate::nightly::command(a, out),
        Command::Supervise { program, args } => crate::supervise::keep(&program, &args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "memslot-diff: {message}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run(&[]).0, 2);
        let (code, _, err) = run(&["replay", "--frobnicate", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("'--frobnicate'"), "{err}");
        let (code, _, err) = run(&["replay", "--target", "nope", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("unknown target 'nope'"), "{err}");
        let (code, _, err) = run(&["stress", "--seed", "1"]);
        assert_eq!(code, 2);
        assert!(err.contains("budget"), "{err}");
        let (code, _, err) = run(&["replay", "/nonexistent/file.scenario"]);
        assert_eq!(code, 2);
        assert!(err.contains("/nonexistent/file.scenario"), "{err}");
        let (code, _, err) = run(&["replay", "--fixed", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("--zoo"), "{err}");
        assert_eq!(run(&["bogus"]).0, 2);
    }

    #[test]
    fn every_command_has_its_own_help() {
        for command in [
            "replay",
            "fmt",
            "encode",
            "minimize",
            "generate",
            "stress",
            "seed-corpus",
            "throughput",
            "eval",
            "mutants",
            "nightly",
        ] {
            let (code, out, err) = run(&[command, "--help"]);
            assert_eq!(code, 0, "{command}: {err}");
            assert!(
                out.contains(&format!("memslot-diff {command}")) && out.contains("--"),
                "{command} --help:\n{out}"
            );
        }
        let (code, out, _) = run(&["--help"]);
        assert_eq!(code, 0);
        assert!(
            out.contains("seed-corpus") && out.contains("exit status"),
            "{out}"
        );
    }
}
