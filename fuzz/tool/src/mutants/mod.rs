//! `memslot-diff mutants`: the harness's mutation score on the C ports.
//!
//! A quiet run is worth the bugs it would have reported. This generates mutants of the four
//! ports of the standard set ([`c`]), builds them all into one `memslot-diff` (the mutant
//! schemata, `MEMSLOT_MUTANT_SOURCES`; target dir `target/mutants`), then runs the stress
//! engine on each (`MEMSLOT_MUTANT=<id> memslot-diff stress --seed S --time T`, a process of
//! its own) and records whether the harness reports it: killed (with the signature, the
//! step and how long it took), survived, timed out (a hang: the mutant loops), or crashed.
//! Mutants judged equivalent, each with its argument, are listed in
//! `reference/c/mutants-equivalent.txt` and counted apart.

mod build;
pub mod c;
pub mod cargo_mutants;
mod command;
mod options;
mod outcome;
pub mod patches;
mod report;
mod run;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

pub(crate) use build::cargo_build;
pub use c::Mutant;
pub use command::command;
pub use options::MutantsArgs;
pub use outcome::{Outcome, Status};
pub use run::{run_one, Engine};

/// The ports the standard set runs, each with the state file it runs (whose defines decide
/// which preprocessor branches are mutated).
pub const PORTS: [(&str, &str); 4] = [
    ("pre", "states/pre_fixed.c"),
    ("post", "states/post_fixed.c"),
    ("post15", "states/post15.c"),
    ("modern", "states/modern.c"),
];
/// The files of a port that are mutated.
pub const FILES: [&str; 2] = ["kvm_host.h", "kvm_main.c"];
/// Functions not mutated: the arch hooks (`kvm_arch_*`, the ports' stand-ins for arch code,
/// no memslot logic) and the VM's set-up and tear-down (what happens after the last
/// comparison of a run is never compared).
pub fn in_scope(function: &str) -> bool {
    !function.starts_with("kvm_arch_")
        && !matches!(
            function,
            "kvm_create_vm" | "kvm_destroy_vm" | "kvm_free_memslots"
        )
}
/// Relative to `reference/c/`.
pub const EQUIVALENT_LIST: &str = "mutants-equivalent.txt";

/// `reference/c/` of this checkout.
pub fn sources_dir() -> PathBuf {
    memslot_harness::corpus::root().join("reference").join("c")
}

/// Files to write: `(path under the schemata dir, text)`.
pub type Schemata = Vec<(PathBuf, String)>;

/// Every mutant of the standard ports, and their schemata.
pub fn generate(c_dir: &Path) -> Result<(Vec<Mutant>, Schemata), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let shim_defines = defines(&read(&c_dir.join("shim/kernel.h"))?);
    let mut mutants = Vec::new();
    let mut files = Vec::new();
    for (port, state) in PORTS {
        let state_text = read(&c_dir.join(state))?;
        let mut defined = defines(&state_text);
        defined.extend(shim_defines.iter().cloned());
        // The helper goes on the first line (so that no line moves) of the port file the
        // state includes first: before every use, and once (a header may be included twice).
        let first = state_text
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("#include \"{port}/")))
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or_else(|| format!("{state}: includes no file of {port}/"))?
            .to_string();
        let port_start = files.len();
        for file in FILES {
            let rel = format!("{port}/{file}");
            let source = read(&c_dir.join(&rel))?;
            let mutated = c::mutate(&source, &rel, &defined, &in_scope, mutants.len());
            mutants.extend(mutated.mutants);
            files.push((PathBuf::from(rel), mutated.schemata));
        }
        // The port's other files, unmutated: the schemata directory is a whole copy of the
        // port, so that an include relative to a port file (modern's guest_memfd.c includes
        // "kvm_host.h") finds the schemata's header, not the original one.
        let dir = c_dir.join(port);
        let mut others: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .filter(|path| {
                !path
                    .file_name()
                    .is_some_and(|n| FILES.iter().any(|f| n == *f))
            })
            .collect();
        others.sort();
        for path in others {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            files.push((PathBuf::from(port).join(name), read(&path)?));
        }
        let (_, text) = files[port_start..]
            .iter_mut()
            .find(|(rel, _)| rel.file_name().is_some_and(|n| *n == *first))
            .ok_or_else(|| format!("{state}: {port}/{first} is not a file of the port"))?;
        text.insert_str(0, c::HELPER);
    }
    Ok((mutants, files))
}

/// The macros `#define`d in a source (names only).
fn defines(source: &str) -> HashSet<String> {
    source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.split('(').next().unwrap_or(name).to_string())
        .collect()
}

/// The equivalent mutants: `key | argument` lines (`#` comments), keyed by [`Mutant::key`].
pub fn equivalents(text: &str, file: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, why)) = line.rsplit_once(" | ") else {
            return Err(format!(
                "{file}:{}: expected `<mutant key> | <why it is equivalent>`",
                n + 1
            ));
        };
        if why.trim().is_empty() {
            return Err(format!("{file}:{}: the argument is missing", n + 1));
        }
        map.insert(key.trim().to_string(), why.trim().to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_have_mutants_in_every_function_the_issue_names() {
        let (mutants, files) = generate(&sources_dir()).unwrap();
        // The mutated headers and sources of four ports, and modern's other five files.
        assert_eq!(files.len(), 13);
        assert!(files
            .iter()
            .any(|(f, _)| f.ends_with("modern/guest_memfd.c")));
        let functions: HashSet<&str> = mutants.iter().map(|m| m.function.as_str()).collect();
        for f in [
            "update_memslots",
            "search_memslots",
            "id_to_memslot",
            "__kvm_set_memory_region",
            "kvm_memslot_delete",
            "kvm_memslot_move_backward",
            "kvm_memslot_move_forward",
        ] {
            assert!(functions.contains(f), "no mutant in {f}: {functions:?}");
        }
        // Keys are unique: the equivalent list can name each mutant.
        let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
        assert_eq!(keys.len(), mutants.len());
    }

    #[test]
    fn the_committed_equivalent_list_names_real_mutants_with_arguments() {
        let file = sources_dir().join(EQUIVALENT_LIST);
        let text = std::fs::read_to_string(&file).unwrap();
        let list = equivalents(&text, "list").unwrap();
        let (mutants, _) = generate(&sources_dir()).unwrap();
        let keys: HashSet<String> = mutants.iter().map(Mutant::key).collect();
        for (key, why) in &list {
            assert!(keys.contains(key), "{key}: no such mutant");
            assert!(why.len() > 20, "{key}: argument too short: {why}");
        }
        assert!(equivalents("a b", "f")
            .unwrap_err()
            .starts_with("f:1: expected"));
    }
}
