//! The comparisons after each step: return codes, WARNs, arrays, indices, counters and LRU
//! hints, and how a difference is put into words.

use memslot_reference::ApiSlot;

use super::{Findings, Runner, Verdict};
use crate::implementations::{Slot, SpaceSnapshot};
use crate::ops::Op;

impl Runner {
    /// "core: x" lines for per-implementation values.
    pub(super) fn lines<T>(&self, values: &[T], show: impl Fn(&T) -> String) -> Vec<String> {
        self.impls
            .iter()
            .zip(values)
            .map(|(imp, v)| format!("{:<7} {}", imp.name(), show(v)))
            .collect()
    }

    pub(super) fn compare_verdicts(&self, op: &Op, verdicts: &[Verdict], findings: &mut Findings) {
        // The answers, reasons aside (compared below among those who give one).
        let same = |a: &Verdict, b: &Verdict| match (a, b) {
            (Verdict::Rc { rc: x, .. }, Verdict::Rc { rc: y, .. }) => x == y,
            _ => a == b,
        };
        if !verdicts.windows(2).all(|w| same(&w[0], &w[1])) {
            let aspect = match op {
                Op::Set(_) | Op::KSet(_) | Op::Set2(_) => "return code".to_string(),
                Op::Lookup { as_id, gfn } => format!("lookup gfn {gfn:#x} in AS {as_id}"),
                Op::Id { as_id, id } => format!("id_to_memslot of id {id} in AS {as_id}"),
                Op::FailPrepare { .. } => "fail-prepare".to_string(),
            };
            findings.push((aspect, self.lines(verdicts, Verdict::text)));
            return;
        }
        // Same errno: the core and the oracle also name the validation step; they must agree.
        let reasons = || {
            self.impls
                .iter()
                .zip(verdicts)
                .filter_map(|(imp, v)| match v {
                    Verdict::Rc {
                        reason: Some(r), ..
                    } => Some((imp.name(), r)),
                    _ => None,
                })
        };
        let mut given = reasons().map(|(_, r)| r);
        let first = given.next();
        if !given.all(|r| Some(r) == first) {
            let reasons: Vec<(&str, &String)> = reasons().collect();
            let details = reasons.iter().map(|(n, r)| format!("{n:<7} {r}")).collect();
            findings.push((
                "validation step that refused the request".to_string(),
                details,
            ));
        }
    }

    pub(super) fn check_warns(&self, before: &[u64], findings: &mut Findings) {
        for (imp, &b) in self.impls.iter().zip(before) {
            let now = imp.warn_count();
            if now > b {
                let what = imp
                    .last_warn()
                    .unwrap_or_else(|| "(no location)".to_string());
                findings.push((
                    format!("WARN in {}: {what}", imp.name()),
                    vec![format!("{} WARN hit(s) during this step", now - b)],
                ));
            }
        }
    }

    pub(super) fn compare_states(
        &self,
        as_id: u16,
        snaps: &[SpaceSnapshot],
        findings: &mut Findings,
    ) {
        let field =
            |f: &dyn Fn(&SpaceSnapshot) -> String| -> Vec<String> { self.lines(snaps, |s| f(s)) };
        if !all_equal_by(snaps, |s| s.used_slots) {
            findings.push((
                format!("used_slots of AS {as_id}"),
                field(&|s| s.used_slots.to_string()),
            ));
        }
        if !all_equal_by(snaps, |s| &s.slots) {
            let i = first_difference(snaps.iter().map(|s| &s.slots[..]));
            let details = field(&|s| match s.slots.get(i) {
                Some(slot) => slot_text(slot),
                None => "(no entry)".to_string(),
            });
            findings.push((format!("array of AS {as_id} (index {i})"), details));
        }
        if !all_equal_by(snaps, |s| &s.index) {
            let id = first_index_difference(snaps);
            let details = field(&|s| match s.index.binary_search_by_key(&id, |e| e.0) {
                Ok(k) => format!("index {}", s.index[k].1),
                Err(_) => "absent".to_string(),
            });
            findings.push((format!("index of id {id} in AS {as_id}"), details));
        }
        if !all_equal_by(snaps, |s| &s.walk) {
            findings.push((
                format!("walk of AS {as_id}"),
                field(&|s| format!("{:?}", s.walk)),
            ));
        }
        if !all_equal_by(snaps, |s| s.generation) {
            findings.push((
                format!("generation of AS {as_id}"),
                field(&|s| s.generation.to_string()),
            ));
        }
        let lrus: Vec<i64> = snaps.iter().filter_map(|s| s.lru).collect();
        if !all_equal(&lrus) {
            findings.push((
                format!("LRU hint of AS {as_id}"),
                field(&|s| lru_text(s.lru)),
            ));
        }
    }
}

/// The per-entry part of [`check_snapshot`] on an array in the ports' copy format: npages > 0,
/// ids below `KVM_MEM_SLOTS_NUM`, bases strictly descending, no two neighbours overlapping.
pub(super) fn shared_array_ok(slots: &[ApiSlot], slots_num: u16) -> bool {
    let entry_ok = |s: &ApiSlot| s.npages != 0 && (0..slots_num as i16).contains(&s.id);
    slots.first().is_none_or(entry_ok)
        && slots.windows(2).all(|w| {
            entry_ok(&w[1])
                && w[0].base_gfn > w[1].base_gfn
                && w[1].base_gfn.saturating_add(w[1].npages) <= w[0].base_gfn
        })
}

pub(super) fn all_equal<T: PartialEq>(values: &[T]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

pub(super) fn all_equal_by<'a, T, K: PartialEq>(values: &'a [T], key: impl Fn(&'a T) -> K) -> bool {
    let mut keys = values.iter().map(key);
    match keys.next() {
        Some(first) => keys.all(|k| k == first),
        None => true,
    }
}

/// The first array index at which the arrays differ.
pub(super) fn first_difference<'a>(mut arrays: impl Iterator<Item = &'a [Slot]>) -> usize {
    let first = arrays.next().unwrap_or_default();
    arrays
        .map(|a| {
            (0..a.len().max(first.len()))
                .find(|&i| a.get(i) != first.get(i))
                .unwrap_or(usize::MAX)
        })
        .min()
        .unwrap_or(0)
}

/// The lowest id whose normalised index differs between implementations.
pub(super) fn first_index_difference(snaps: &[SpaceSnapshot]) -> u16 {
    let lookup = |s: &SpaceSnapshot, id: u16| {
        s.index
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|k| s.index[k].1)
    };
    let mut ids: Vec<u16> = snaps
        .iter()
        .flat_map(|s| s.index.iter().map(|e| e.0))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .find(|&id| !all_equal_by(snaps, |s| lookup(s, id)))
        .unwrap_or(0)
}

/// `id 3 base 0x100 npages 0x200 flags dirty hva 0x7f0000000000`.
pub fn slot_text(s: &Slot) -> String {
    format!(
        "id {} base {:#x} npages {:#x} flags {} hva {:#x}",
        s.id,
        s.base_gfn,
        s.npages,
        crate::ops::flag_letters(s.flags),
        s.userspace_addr
    )
}

pub(super) fn lru_text(lru: Option<i64>) -> String {
    lru.map_or_else(|| "(none)".to_string(), |l| l.to_string())
}

/// The address space an aspect names (`... AS 1 ...`), so the report shows that one.
pub(super) fn aspect_as(aspect: &str) -> Option<u16> {
    let rest = &aspect[aspect.find("AS ")? + 3..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
