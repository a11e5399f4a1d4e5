//! The `update` target: `update_memslots()` driven directly, below the ioctl.
//!
//! `__kvm_set_memory_region()` only ever asks update_memslots for a MOVE or FLAGS_ONLY of an
//! existing slot, a CREATE of an absent one and a DELETE of an existing one. This target also
//! asks for what the ioctl cannot: a MOVE, FLAGS_ONLY or DELETE of an absent id, which the
//! kernel handles with a WARN and no change once 1e8617d37fc3 is in (before it, a MOVE or
//! FLAGS_ONLY writes `memslots[-1]`). Calls whose outcome the kernel leaves undefined (a CREATE
//! of a present id or of an overlapping range, a MOVE onto another slot) are skipped.
//!
//! Compared after every call, between `memslot_core::Memslots::update` (whose `Err` stands for
//! the kernel's WARN) and the post15 port state (the fixed one, or a zoo state): WARN or
//! refusal, used_slots, the used entries, the index of every id, and any out-of-bounds access
//! the shim caught. The tree backend takes the same call as one `commit` (its
//! `kvm_set_memslot` step, through both of its sets) and must refuse exactly what the array
//! refuses, walk the same slots and keep its own invariants. The literal `pre` and `post` ports are left out: pre's update_memslots has
//! other preconditions, and post (the seed patch) writes `memslots[-1]` here, as every state
//! before 1e8617d37fc3 does (the zoo's `update-absent-id`).

use std::fmt::Write as _;

use memslot_core::{Change, MemorySlot, MemslotSet, Memslots, TreeMemslots};
use memslot_reference::{MrChange, Port, PortVm, RawSlot};

use crate::ops::{KVM_ADDRESS_SPACE_NUM, KVM_MEM_SLOTS_NUM};
use crate::zoo;

/// One direct call of update_memslots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub as_id: u16,
    pub change: Change,
    pub slot: MemorySlot,
}

impl Call {
    pub fn text(&self) -> String {
        let change = match self.change {
            Change::Create => "create",
            Change::Delete => "delete",
            Change::Move => "move",
            Change::FlagsOnly => "flags-only",
        };
        format!(
            "update_memslots as={} id={} change={change} gfn={:#x} npages={} flags={:#x}",
            self.as_id, self.slot.id, self.slot.base_gfn, self.slot.npages, self.slot.flags
        )
    }
}

/// Most calls name one of a few ids so that they collide; the rest spread over all of them.
fn id_of(byte: u8) -> u16 {
    if byte < 224 {
        u16::from(byte % 8)
    } else {
        8 + u16::from(byte % 32) * 16
    }
}

fn hva_of(id: u16) -> u64 {
    0x1_0000_0000 + (u64::from(id) << 24)
}

/// The calls of an input: five bytes each (change and AS, id, base, size, flags), with the
/// undefined ones dropped by looking at the core's state as the calls go.
pub fn decode(data: &[u8]) -> Vec<Call> {
    let mut spaces: Vec<Memslots> = (0..KVM_ADDRESS_SPACE_NUM)
        .map(|a| Memslots::new(usize::from(KVM_MEM_SLOTS_NUM), u64::from(a)))
        .collect();
    let mut calls = Vec::new();
    for chunk in data.chunks_exact(5).take(4096) {
        let as_id = u16::from((chunk[0] >> 2) & 1);
        let change = [
            Change::Create,
            Change::Delete,
            Change::Move,
            Change::FlagsOnly,
        ][usize::from(chunk[0] & 3)];
        let id = id_of(chunk[1]);
        let base_gfn = u64::from(chunk[2] % 64) * 4;
        let npages = 1 + u64::from(chunk[3] % 8);
        let dirty = u32::from(chunk[4] & 1);
        let space = &mut spaces[usize::from(as_id)];
        let current = space.id_to_memslot(id).copied();
        let free = |base: u64, npages: u64| {
            space
                .slots()
                .iter()
                .all(|s| s.id == id || base + npages <= s.base_gfn || base >= s.end_gfn())
        };
        let slot = match (change, current) {
            (Change::Create, None) if free(base_gfn, npages) => MemorySlot {
                id,
                base_gfn,
                npages,
                flags: dirty,
                userspace_addr: hva_of(id),
            },
            (Change::Move, Some(old)) if base_gfn != old.base_gfn && free(base_gfn, old.npages) => {
                MemorySlot {
                    base_gfn,
                    flags: dirty,
                    ..old
                }
            }
            (Change::FlagsOnly, Some(old)) => MemorySlot {
                flags: old.flags ^ 1,
                ..old
            },
            // As kvm_delete_memslot() builds it: only the id.
            (Change::Delete, _) => MemorySlot {
                id,
                base_gfn: 0,
                npages: 0,
                flags: 0,
                userspace_addr: 0,
            },
            // MOVE or FLAGS_ONLY of an absent id: defined since 1e8617d37fc3 (WARN, no change).
            (Change::Move | Change::FlagsOnly, None) => MemorySlot {
                id,
                base_gfn,
                npages,
                flags: dirty,
                userspace_addr: hva_of(id),
            },
            _ => continue,
        };
        let _ = space.update(&slot, change);
        calls.push(Call {
            as_id,
            change,
            slot,
        });
    }
    calls
}

/// Parses calls in [`Call::text`]'s form, one per line (`#` comments and blank lines allowed),
/// as `corpus/update/seeds/*.calls` holds them. Errors name the line.
pub fn parse(text: &str) -> Result<Vec<Call>, String> {
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| format!("line {}: {why}: `{line}`", n + 1);
        let mut words = line.split_whitespace();
        if words.next() != Some("update_memslots") {
            return Err(bad("expected `update_memslots key=value...`".to_string()));
        }
        let (mut as_id, mut id, mut change, mut gfn, mut npages, mut flags) =
            (None, None, None, None, None, None);
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| bad(format!("`{word}` is not key=value")))?;
            let number = || {
                crate::scenario::parse_u64(value, false)
                    .map_err(|why| bad(format!("bad number for {key}: {why}")))
            };
            match key {
                "as" => as_id = Some(number()?),
                "id" => id = Some(number()?),
                "gfn" => gfn = Some(number()?),
                "npages" => npages = Some(number()?),
                "flags" => flags = Some(number()?),
                "change" => {
                    change = Some(match value {
                        "create" => Change::Create,
                        "delete" => Change::Delete,
                        "move" => Change::Move,
                        "flags-only" => Change::FlagsOnly,
                        _ => return Err(bad(format!("unknown change `{value}`"))),
                    })
                }
                _ => return Err(bad(format!("unknown key `{key}`"))),
            }
        }
        let missing = |key: &str| bad(format!("missing {key}="));
        let as_id = as_id.ok_or_else(|| missing("as"))?;
        let id = id.ok_or_else(|| missing("id"))?;
        if as_id >= u64::from(KVM_ADDRESS_SPACE_NUM) || id >= u64::from(KVM_MEM_SLOTS_NUM) {
            return Err(bad("as or id out of range".to_string()));
        }
        calls.push(Call {
            as_id: as_id as u16,
            change: change.ok_or_else(|| missing("change"))?,
            slot: MemorySlot {
                id: id as u16,
                base_gfn: gfn.ok_or_else(|| missing("gfn"))?,
                npages: npages.ok_or_else(|| missing("npages"))?,
                flags: flags.unwrap_or(0) as u32,
                userspace_addr: if npages == Some(0) {
                    0
                } else {
                    hva_of(id as u16)
                },
            },
        });
    }
    Ok(calls)
}

/// The five bytes [`decode`] reads for one call (the inverse for the calls it keeps).
pub fn encode(calls: &[Call]) -> Vec<u8> {
    let mut out = Vec::with_capacity(calls.len() * 5);
    for c in calls {
        let change = match c.change {
            Change::Create => 0,
            Change::Delete => 1,
            Change::Move => 2,
            Change::FlagsOnly => 3,
        };
        let id = c.slot.id;
        let id_byte = if id < 8 {
            id as u8
        } else {
            224 + ((id - 8) / 16) as u8
        };
        out.extend_from_slice(&[
            change | ((c.as_id as u8) << 2),
            id_byte,
            (c.slot.base_gfn / 4) as u8,
            c.slot.npages.saturating_sub(1) as u8,
            (c.slot.flags & 1) as u8,
        ]);
    }
    out
}

fn mr_change(change: Change) -> MrChange {
    match change {
        Change::Create => MrChange::Create,
        Change::Delete => MrChange::Delete,
        Change::Move => MrChange::Move,
        Change::FlagsOnly => MrChange::FlagsOnly,
    }
}

/// The post15 state the `update` target compares with the core under `lockstep`: the fixed
/// one for the standard set, else the zoo's.
pub fn port(lockstep: &zoo::Lockstep) -> Port {
    lockstep.port().unwrap_or(Port::Post15)
}

/// `(id, base_gfn, npages, flags, hva)` of the used entries, in array order.
type Entries = Vec<(i64, u64, u64, u32, u64)>;

fn core_view(m: &Memslots) -> (Entries, Vec<i64>) {
    let entries = m
        .slots()
        .iter()
        .map(|s| {
            (
                i64::from(s.id),
                s.base_gfn,
                s.npages,
                s.flags,
                s.userspace_addr,
            )
        })
        .collect();
    let index = (0..KVM_MEM_SLOTS_NUM)
        .map(|id| m.index_of(id).map_or(-1, |i| i as i64))
        .collect();
    (entries, index)
}

fn port_view(vm: &mut PortVm, as_id: u16) -> (Entries, Vec<i64>) {
    let s = vm.state_ref(as_id, usize::from(KVM_MEM_SLOTS_NUM));
    let used = (s.used_slots.max(0) as usize).min(s.entries.len());
    let entries = s.entries[..used]
        .iter()
        .map(|e| {
            (
                i64::from(e.id),
                e.base_gfn,
                e.npages,
                e.flags,
                e.userspace_addr,
            )
        })
        .collect();
    let index = s.id_to_index.iter().map(|&i| i64::from(i)).collect();
    (entries, index)
}

/// Runs the calls on the core and `port`; the report of the first difference, if any.
pub fn check(port: Port, calls: &[Call]) -> Result<(), String> {
    let mut core: Vec<Memslots> = (0..KVM_ADDRESS_SPACE_NUM)
        .map(|a| Memslots::new(usize::from(KVM_MEM_SLOTS_NUM), u64::from(a)))
        .collect();
    let mut trees: Vec<TreeMemslots> = (0..KVM_ADDRESS_SPACE_NUM)
        .map(|a| TreeMemslots::new(usize::from(KVM_MEM_SLOTS_NUM), u64::from(a)))
        .collect();
    let mut vm = PortVm::new(port);
    for (step, call) in calls.iter().enumerate() {
        let space = &mut core[usize::from(call.as_id)];
        let refused = space.update(&call.slot, call.change).err();
        let tree = &mut trees[usize::from(call.as_id)];
        let tree_refused = tree.commit(&call.slot, call.change, 2).err();
        let warns = vm.warn_count();
        let raw = RawSlot {
            id: call.slot.id as i16,
            base_gfn: call.slot.base_gfn,
            npages: call.slot.npages,
            flags: call.slot.flags,
            userspace_addr: call.slot.userspace_addr,
            has_dirty_bitmap: false,
        };
        let rc = vm.update_memslots(call.as_id, &raw, mr_change(call.change));
        let warned = vm.warn_count() > warns;
        let mut findings = Vec::new();
        if let Some(fault) = vm.fault() {
            findings.push(format!("out-of-bounds access: {port}: {fault}"));
        } else {
            if rc != 0 {
                findings.push(format!("{port}: update_memslots API returned {rc}"));
            }
            if refused.is_some() != warned {
                findings.push(format!(
                    "WARN or refusal: core {}, {port} {}",
                    refused.map_or("accepts".to_string(), |e| format!("refuses ({e})")),
                    if warned {
                        format!("WARNs ({})", vm.last_warn().unwrap_or("?"))
                    } else {
                        "does not WARN".to_string()
                    }
                ));
            }
            let (core_entries, core_index) = core_view(space);
            let (port_entries, port_index) = port_view(&mut vm, call.as_id);
            if core_entries != port_entries {
                findings.push(format!(
                    "array of AS {}:\n  core: {core_entries:?}\n  {port}: {port_entries:?}",
                    call.as_id
                ));
            }
            if let Some(id) = (0..core_index.len()).find(|&i| core_index[i] != port_index[i]) {
                findings.push(format!(
                    "index of id {id} in AS {}: core {}, {port} {}",
                    call.as_id, core_index[id], port_index[id]
                ));
            }
            if tree_refused != refused {
                findings.push(format!("refusal: core {refused:?}, tree {tree_refused:?}"));
            }
            let tree_walk: Vec<MemorySlot> = tree.walk().copied().collect();
            if tree_walk != space.slots() {
                findings.push(format!(
                    "walk of AS {}:\n  core: {:?}\n  tree: {tree_walk:?}",
                    call.as_id,
                    space.slots()
                ));
            }
            if let Err(e) = tree.check_invariants() {
                findings.push(format!("invariant of tree: AS {}: {e}", call.as_id));
            }
        }
        if !findings.is_empty() {
            let mut report = format!(
                "memslot-diff: update_memslots diverged at step {} of {}: {}\n",
                step + 1,
                calls.len(),
                call.text()
            );
            for f in &findings {
                let _ = writeln!(report, "  {f}");
            }
            report.push_str("calls:\n");
            for c in &calls[..=step] {
                let _ = writeln!(report, "  {}", c.text());
            }
            // Its header may be overwritten (the memslots[-1] write): destroying it would
            // walk garbage and crash before the report is out. Leak it.
            std::mem::forget(vm);
            return Err(report);
        }
    }
    Ok(())
}

/// The `update` fuzz target.
pub fn fuzz(data: &[u8]) {
    if let Err(report) = check(port(&zoo::selected()), &decode(data)) {
        panic!("\n{report}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_defined_calls_and_encode_inverts_it() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 37 % 251) as u8).collect();
        let calls = decode(&data);
        assert!(calls.len() > 20, "{}", calls.len());
        assert_eq!(decode(&encode(&calls)), calls);
        assert!(calls.iter().any(|c| c.change == Change::Move));
    }

    #[test]
    fn fixed_post15_agrees_with_the_core_on_absent_ids() {
        // create id 0, move absent id 1, flags-only absent id 2, delete absent id 3
        let calls = decode(&[0, 0, 0, 0, 0, 2, 1, 8, 0, 0, 3, 2, 0, 0, 0, 1, 3, 0, 0, 0]);
        assert_eq!(calls.len(), 4);
        check(Port::Post15, &calls).unwrap();
    }
}
