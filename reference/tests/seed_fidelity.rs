//! The ports against the seed patch itself, line by line.
//!
//! `c/seed/*.diff` is the diff of "KVM: Terminate memslot walks via used_slots" as
//! posted. For every hunk in code this project ports, the post side (from its first to
//! its last added line, with the context between) must appear verbatim and contiguous
//! in the post port, and the pre side (first to last removed line) in the pre port.
//! Whitespace runs are collapsed; nothing else is forgiven. Hunks in code the ports do
//! not carry are listed with the reason, so a new hunk cannot be skipped silently.

use std::fs;
use std::path::Path;

const DIFF: &str = "c/seed/kvm-terminate-memslot-walks-via-used_slots.diff";

/// (file, hunk header fragment, why the hunk is not checked against a port).
const NOT_PORTED: &[(&str, &str, &str)] = &[
    (
        "arch/powerpc/kvm/book3s_hv.c",
        "",
        "powerpc dirty log: not part of the request chain",
    ),
    (
        "arch/x86/kvm/x86.c",
        "",
        "__x86_set_memory_region: the harness calls the in-kernel path directly",
    ),
    (
        "virt/kvm/arm/mmu.c",
        "",
        "arm stage-2 write protection: not part of the request chain",
    ),
    (
        "virt/kvm/kvm_main.c",
        "kvm_get_dirty_log",
        "dirty-log ioctls are not ported",
    ),
    (
        "virt/kvm/kvm_main.c",
        "kvm_get_dirty_log_protect",
        "dirty-log ioctls are not ported",
    ),
    (
        "virt/kvm/kvm_main.c",
        "kvm_clear_dirty_log_protect",
        "dirty-log ioctls are not ported",
    ),
];

/// Hunks whose pre side is not v5.6: the series reshaped these functions before the
/// seed (facts §0), and the pre port is v5.6 itself. Their post side is still checked.
const PRE_SIDE_NOT_V5_6: &[(&str, &str)] =
    &[("virt/kvm/kvm_main.c", "int __kvm_set_memory_region(")];

struct Hunk {
    file: String,
    header: String,
    /// (marker, text): ' ' context, '-' removed, '+' added.
    lines: Vec<(char, String)>,
}

fn parse(diff: &str) -> Vec<Hunk> {
    let mut hunks: Vec<Hunk> = Vec::new();
    let mut file = String::new();
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            file = rest.split(" b/").next().unwrap().to_owned();
        } else if line.starts_with("--- ") || line.starts_with("+++ ") || line.starts_with("index ")
        {
        } else if line.starts_with("@@") {
            hunks.push(Hunk {
                file: file.clone(),
                header: line.to_owned(),
                lines: Vec::new(),
            });
        } else if let Some(hunk) = hunks.last_mut() {
            let (marker, text) = match line.chars().next() {
                Some(m @ ('-' | '+' | ' ')) => (m, &line[1..]),
                None => (' ', ""),
                Some(_) => panic!("{DIFF}: unexpected line in a hunk: {line:?}"),
            };
            hunk.lines.push((marker, text.to_owned()));
        }
    }
    hunks
}

fn normalise(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The side of a hunk seen with `keep` ('-' or '+'), from its first to its last changed line.
fn side(hunk: &Hunk, keep: char) -> Vec<String> {
    let changed: Vec<usize> = hunk
        .lines
        .iter()
        .enumerate()
        .filter(|(_, (m, _))| *m == keep)
        .map(|(i, _)| i)
        .collect();
    let (Some(&first), Some(&last)) = (changed.first(), changed.last()) else {
        return Vec::new();
    };
    hunk.lines[first..=last]
        .iter()
        .filter(|(m, _)| *m == ' ' || *m == keep)
        .map(|(_, t)| normalise(t))
        .collect()
}

fn contains_block(file: &[String], block: &[String]) -> bool {
    block.is_empty() || file.windows(block.len()).any(|w| w == block)
}

fn port_file(port: &str, kernel_file: &str) -> Option<String> {
    let name = match kernel_file {
        "virt/kvm/kvm_main.c" => "kvm_main.c",
        "include/linux/kvm_host.h" => "kvm_host.h",
        _ => return None,
    };
    Some(format!("c/{port}/{name}"))
}

#[test]
fn every_ported_hunk_of_the_seed_appears_verbatim_in_its_port() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let diff = fs::read_to_string(root.join(DIFF)).expect("the vendored seed diff");
    let hunks = parse(&diff);
    assert_eq!(hunks.len(), 15, "the seed diff has 15 hunks");

    let mut checked = 0;
    for hunk in &hunks {
        let skipped = NOT_PORTED.iter().any(|(file, function, _)| {
            *file == hunk.file
                && (function.is_empty() || hunk.header.contains(&format!(" {function}(")))
        });
        if skipped {
            continue;
        }
        for (port, marker) in [("post", '+'), ("pre", '-')] {
            if port == "pre"
                && PRE_SIDE_NOT_V5_6
                    .iter()
                    .any(|(f, h)| *f == hunk.file && hunk.header.contains(h))
            {
                continue;
            }
            let path = port_file(port, &hunk.file)
                .unwrap_or_else(|| panic!("no port file for {}", hunk.file));
            let text = fs::read_to_string(root.join(&path)).unwrap();
            let lines: Vec<String> = text.lines().map(normalise).collect();
            let block = side(hunk, marker);
            assert!(
                contains_block(&lines, &block),
                "{path} lacks the {port} side of {} {}:\n{}",
                hunk.file,
                hunk.header,
                block.join("\n")
            );
            checked += block.len();
        }
    }
    // The update_memslots hunk alone is ~150 lines on the post side.
    assert!(checked > 200, "only {checked} lines checked");
}
