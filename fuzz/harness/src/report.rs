//! The divergence report: what a panicking fuzz target, a failing `cargo test` and the
//! `memslot-diff` command all print.
//!
//! It is written for a kernel developer at a terminal: where the input came from, the step and
//! its operation in scenario syntax, each implementation's verdict with errno names, what
//! differs with every implementation's value, the arrays side by side with the differing cells
//! marked, the scenario up to that step, and the command that replays it.

use std::fmt::Write as _;

pub use crate::implementations::found_text;
use crate::implementations::{Slot, SpaceSnapshot};
pub use crate::ops::flag_letters;
use crate::runner::Divergence;
pub use crate::runner::OUT_OF_BOUNDS;

/// Where a divergent program came from, for the report's header and replay line.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Fuzz target whose decoding produced the program (`differential`, ...).
    pub target: Option<String>,
    /// The input file (scenario or fuzz artifact).
    pub input: Option<String>,
    /// The command that replays the program (`cargo memslot-diff replay FILE`).
    pub replay: Option<String>,
    /// Anything else worth a line (e.g. the stress seed).
    pub note: Option<String>,
}

impl Context {
    /// The replay command for a file.
    pub fn replay_command(file: &str, target: Option<&str>) -> String {
        match target {
            Some(t) => format!("cargo memslot-diff replay --target {t} {file}"),
            None => format!("cargo memslot-diff replay {file}"),
        }
    }
}

/// Rows shown around each differing row when an array is long.
const CONTEXT_ROWS: usize = 3;
/// Arrays up to this many rows are shown whole.
const FULL_TABLE_ROWS: usize = 40;

/// Render a divergence for the terminal.
pub fn render(d: &Divergence, ctx: &Context) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "memslot-diff: the implementations DIVERGE");
    if let Some(t) = &ctx.target {
        let _ = writeln!(out, "  target:  {t}");
    }
    if let Some(i) = &ctx.input {
        let _ = writeln!(out, "  input:   {i}");
    }
    if let Some(n) = &ctx.note {
        let _ = writeln!(out, "  note:    {n}");
    }
    let _ = writeln!(out, "  step {} of {}:  {}", d.step, d.total, d.op);
    let _ = writeln!(
        out,
        "  signature: {}  (disagreeing: {})",
        signature(d),
        disagreeing(d).join(", ")
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  differs: {}", d.aspect);
    for line in &d.details {
        let _ = writeln!(out, "    {line}");
    }
    if !d.also.is_empty() {
        let _ = writeln!(out, "  also differs at this step: {}", d.also.join("; "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  verdicts on step {}:", d.step);
    for (name, verdict) in &d.verdicts {
        let _ = writeln!(out, "    {name:<7} {verdict}");
    }
    for (as_id, snaps) in &d.tables {
        let _ = writeln!(out);
        out.push_str(&table(*as_id, d.step, snaps));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  scenario up to step {}:", d.step);
    for (i, op) in d.ops.iter().enumerate() {
        let marker = if i + 1 == d.step {
            "  <== diverges here"
        } else {
            ""
        };
        let _ = writeln!(out, "    {op}{marker}");
    }
    let _ = writeln!(out);
    match &ctx.replay {
        Some(command) => {
            let _ = writeln!(out, "  replay:  {command}");
        }
        None => {
            let _ = writeln!(out, "  replay:  save the scenario above to a file, then: cargo memslot-diff replay FILE");
        }
    }
    out
}

/// The arrays of one address space side by side, `!` after each cell that differs from the
/// majority of implementations.
pub fn table(as_id: u16, step: usize, snaps: &[(&'static str, SpaceSnapshot)]) -> String {
    let rows = snaps.iter().map(|(_, s)| s.slots.len()).max().unwrap_or(0);
    let show_hva = (0..rows).any(|r| {
        !agree(
            snaps
                .iter()
                .map(|(_, s)| s.slots.get(r).map(|x| x.userspace_addr)),
        )
    });
    let cell = |s: Option<&Slot>| match s {
        Some(s) => {
            let mut c = format!(
                "{:>3} {:#x}+{:#x} {}",
                s.id,
                s.base_gfn,
                s.npages,
                flag_letters(s.flags)
            );
            if show_hva {
                let _ = write!(c, " hva {:#x}", s.userspace_addr);
            }
            c
        }
        None => "-".to_string(),
    };
    // Cells, per row, per implementation; then the marks.
    let mut body: Vec<(String, Vec<String>, bool)> = Vec::new();
    for r in 0..rows {
        let values: Vec<Option<Slot>> =
            snaps.iter().map(|(_, s)| s.slots.get(r).copied()).collect();
        let (cells, differs) = marked(&values, |v| cell(v.as_ref()));
        body.push((r.to_string(), cells, differs));
    }
    let footer: Vec<(String, Vec<String>, bool)> = vec![
        {
            let v: Vec<i64> = snaps.iter().map(|(_, s)| s.used_slots).collect();
            let (c, d) = marked(&v, |x| x.to_string());
            ("used_slots".to_string(), c, d)
        },
        {
            let v: Vec<u64> = snaps.iter().map(|(_, s)| s.generation).collect();
            let (c, d) = marked(&v, |x| x.to_string());
            ("generation".to_string(), c, d)
        },
        {
            let v: Vec<Option<i64>> = snaps.iter().map(|(_, s)| s.lru).collect();
            let known: Vec<i64> = v.iter().flatten().copied().collect();
            let (mut c, d) = marked(&known, |x| x.to_string());
            let mut it = c.drain(..);
            let cells = v
                .iter()
                .map(|l| {
                    if l.is_some() {
                        it.next().unwrap_or_default()
                    } else {
                        "n/a".to_string()
                    }
                })
                .collect();
            ("lru_slot".to_string(), cells, d)
        },
    ];
    // Elide long agreeing stretches.
    let keep: Vec<bool> = if rows <= FULL_TABLE_ROWS {
        vec![true; rows]
    } else {
        (0..rows)
            .map(|r| {
                r < CONTEXT_ROWS
                    || r + CONTEXT_ROWS >= rows
                    || (r.saturating_sub(CONTEXT_ROWS)..=(r + CONTEXT_ROWS).min(rows - 1))
                        .any(|k| body[k].2)
            })
            .collect()
    };
    let names: Vec<&str> = snaps.iter().map(|(n, _)| *n).collect();
    let mut widths: Vec<usize> = names.iter().map(|n| n.len()).collect();
    for (_, cells, _) in body.iter().chain(&footer) {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.len());
        }
    }
    let label_width = 10;
    let write_row = |out: &mut String, label: &str, cells: &[String]| {
        let row: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(
            out,
            "    {label:>label_width$} | {}",
            row.join(" | ").trim_end()
        );
    };
    let mut out = String::new();
    let all_same = body.iter().chain(&footer).all(|(_, _, d)| !d);
    let _ = writeln!(
        out,
        "  AS {as_id} after step {step}{}",
        if all_same {
            " (all implementations agree on it)"
        } else {
            " (! marks a cell that differs from the majority)"
        }
    );
    let header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    write_row(&mut out, "index", &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "    {:->label_width$}-+-{}", "", rule.join("-+-"));
    let mut skipped = false;
    for (r, (label, cells, _)) in body.iter().enumerate() {
        if !keep[r] {
            if !skipped {
                let _ = writeln!(
                    out,
                    "    {:>label_width$} | (rows that agree omitted)",
                    "..."
                );
            }
            skipped = true;
            continue;
        }
        skipped = false;
        write_row(&mut out, label, cells);
    }
    if rows == 0 {
        let _ = writeln!(out, "    {:>label_width$} | (no slots)", "");
    }
    let _ = writeln!(out, "    {:->label_width$}-+-{}", "", rule.join("-+-"));
    for (label, cells, _) in &footer {
        write_row(&mut out, label, cells);
    }
    out
}

/// Cells for one row with `!` appended where the value differs from the most common one
/// (ties go to the later implementation, i.e. the oracle). Also returns whether any differ.
fn marked<T: PartialEq>(values: &[T], show: impl Fn(&T) -> String) -> (Vec<String>, bool) {
    let count = |v: &T| values.iter().filter(|x| *x == v).count();
    let majority = values.iter().rev().max_by_key(|v| count(v));
    let differs = !agree(values.iter());
    let cells = values
        .iter()
        .map(|v| {
            let mut c = show(v);
            if differs && Some(v) != majority {
                c.push_str(" !");
            }
            c
        })
        .collect();
    (cells, differs)
}

fn agree<T: PartialEq>(mut values: impl Iterator<Item = T>) -> bool {
    match values.next() {
        Some(first) => values.all(|v| v == first),
        None => true,
    }
}

/// A divergence's signature: the kind of divergence, the kind of operation and the
/// implementations that disagree with the others, e.g. `index.delete.core`,
/// `lookup-probe.create.pre-post`, `out-of-bounds-access.lookup.post15` (the implementation
/// whose access faulted), `warn-post-kvm_main.c-175.move` (a WARN or a broken invariant
/// already names its implementation). No addresses, ids or steps, so that the many
/// inputs that hit one bug share one signature; filename-safe (`[a-z0-9_.-]`), so that
/// `ci/nightly` names a stored regression after it.
pub fn signature(d: &Divergence) -> String {
    let aspect = d.aspect.as_str();
    let kind = if let Some(rest) = aspect.strip_prefix("WARN in ") {
        // `WARN in post: kvm_main.c:175: WARN_ON_ONCE(...)`: the implementation and the place.
        let mut parts = rest.splitn(4, ':').map(str::trim);
        let who = parts.next().unwrap_or("");
        let file = parts.next().unwrap_or("");
        let file = file.rsplit('/').next().unwrap_or(file);
        format!("warn-{who}-{file}-{}", parts.next().unwrap_or(""))
    } else if let Some(rest) = aspect.strip_prefix("invariant of ") {
        format!("invariant-{}", rest.split(':').next().unwrap_or(""))
    } else {
        let cut = [" of AS", " in AS", " gfn ", " of id ", " (", " that "]
            .iter()
            .filter_map(|m| aspect.find(m))
            .min()
            .unwrap_or(aspect.len());
        let probe = if aspect.contains("probe") {
            "-probe"
        } else {
            ""
        };
        format!("{}{probe}", &aspect[..cut])
    };
    let op = match (d.op_kind, &d.op) {
        (Some(kind), _) => kind.name(),
        (None, crate::ops::Op::FailPrepare { .. }) => "fail-prepare",
        (None, _) => "other",
    };
    let slug = |s: &str| -> String {
        let s: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        s.split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    };
    let who = disagreeing(d).join("-");
    if who.is_empty() || aspect.starts_with("WARN in ") || aspect.starts_with("invariant of ") {
        format!("{}.{}", slug(&kind), slug(op))
    } else {
        format!("{}.{}.{}", slug(&kind), slug(op), slug(&who))
    }
}

/// The implementations that disagree with the majority on the first differing aspect (ties go
/// to the later implementation, as in the tables); for a WARN or a broken invariant, the
/// implementation concerned; for an out-of-bounds access, the implementations whose access
/// faulted (one detail line each, `name: what`).
pub fn disagreeing(d: &Divergence) -> Vec<&'static str> {
    let names: Vec<&'static str> = d.verdicts.iter().map(|(n, _)| *n).collect();
    for prefix in ["WARN in ", "invariant of "] {
        if let Some(rest) = d.aspect.strip_prefix(prefix) {
            let who = rest.split(':').next().unwrap_or("");
            return names.into_iter().filter(|n| *n == who).collect();
        }
    }
    if d.aspect == OUT_OF_BOUNDS {
        return names
            .into_iter()
            .filter(|n| {
                d.details
                    .iter()
                    .any(|line| line.strip_prefix(n).is_some_and(|r| r.starts_with(':')))
            })
            .collect();
    }
    let values: Vec<(&'static str, &str)> = names
        .iter()
        .filter_map(|n| {
            d.details.iter().find_map(|line| {
                let rest = line.strip_prefix(n)?;
                rest.starts_with(' ').then(|| (*n, rest.trim()))
            })
        })
        // An implementation without the thing (the oracle has no LRU hint) takes no side.
        .filter(|(_, v)| !matches!(*v, "(none)" | "n/a"))
        .collect();
    let count = |v: &str| values.iter().filter(|(_, x)| *x == v).count();
    let Some(majority) = values
        .iter()
        .rev()
        .max_by_key(|(_, v)| count(v))
        .map(|x| x.1)
    else {
        return Vec::new();
    };
    values
        .iter()
        .filter(|(_, v)| *v != majority)
        .map(|(n, _)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(slots: Vec<Slot>, generation: u64) -> SpaceSnapshot {
        SpaceSnapshot {
            generation,
            used_slots: slots.len() as i64,
            index: Vec::new(),
            walk: slots.iter().map(|s| s.id).collect(),
            slots,
            lru: Some(0),
        }
    }

    fn slot(id: i32, base: u64) -> Slot {
        Slot {
            id,
            base_gfn: base,
            npages: 1,
            flags: 0,
            userspace_addr: 0,
        }
    }

    #[test]
    fn table_marks_the_odd_cell() {
        let good = snap(vec![slot(2, 0x20), slot(1, 0x10)], 4);
        let bad = snap(vec![slot(1, 0x10), slot(2, 0x20)], 4);
        let t = table(
            0,
            2,
            &[
                ("core", good.clone()),
                ("pre", good.clone()),
                ("post", bad),
                ("oracle", good),
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("! marks"), "{t}");
        assert!(
            lines[3].ends_with("  1 0x10+0x1 0 ! |   2 0x20+0x1 0"),
            "{t}"
        );
        assert_eq!(t.matches('!').count(), 2 + 1, "{t}");
    }

    #[test]
    fn signatures_name_the_kind_not_the_values() {
        let text = include_str!("../tests/known/lookup-below-512-slots.scenario");
        let ops = crate::scenario::parse(text).unwrap();
        let lockstep = crate::zoo::Lockstep::parse("below-lowest-full").unwrap();
        let d = crate::runner::Runner::new(lockstep.implementations(), Default::default())
            .run(&ops)
            .divergence
            .expect("a known divergence");
        assert_eq!(
            signature(&d),
            "lookup-probe.create.pre-bug-below-lowest-full"
        );
        assert_eq!(disagreeing(&d), ["pre-bug-below-lowest-full"]);
        let mut warn = d.clone();
        warn.aspect =
            "WARN in pre-bug-below-lowest-full: kvm_main.c:175: WARN_ON_ONCE(x)".to_string();
        warn.op_kind = Some(crate::runner::OpKind::Move);
        assert_eq!(
            signature(&warn),
            "warn-pre-bug-below-lowest-full-kvm_main.c-175.move"
        );
        assert_eq!(disagreeing(&warn), ["pre-bug-below-lowest-full"]);
    }

    #[test]
    fn flags_read_well() {
        assert_eq!(flag_letters(0), "0");
        assert_eq!(flag_letters(1 | (1 << 16)), "dirty|INVALID");
        assert_eq!(flag_letters(2 | 0x100), "ro|0x100");
    }
}
