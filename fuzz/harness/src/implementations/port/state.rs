//! What a port's state copy says: its index map normalised across the ports' families, and
//! the invariants of its raw `struct kvm_memslots`.

use memslot_reference::{Family, RawState, NOT_IN_ARRAY};

use super::ARRAY_SLOTS;
use crate::arch_profile::ArchProfile;
use crate::ops::KVM_MEM_LOG_DIRTY_PAGES;

/// The normalised index map of a raw state: pre's pointers at empty entries and post's -1 are
/// both "absent". A post index past used_slots is kept, so that it shows as a difference.
pub(super) fn normalised_index(family: Family, state: &RawState) -> Vec<(u16, i64)> {
    let used = state.used_slots.max(0) as usize;
    let mut index = Vec::with_capacity(used);
    for (id, &raw) in state.id_to_index.iter().enumerate() {
        let present = match family {
            Family::Pre => {
                let i = raw as usize;
                raw >= 0 && i < used && state.entries.get(i).is_some_and(|e| e.npages != 0)
            }
            Family::Post | Family::Post15 | Family::Modern => raw >= 0,
        };
        if present {
            index.push((id as u16, i64::from(raw)));
        }
    }
    index
}

/// `(id, id_to_index[id])` for the ids the first `used` entries hold, sorted by id.
pub(super) fn array_index(state: &RawState, used: usize) -> Vec<(u16, i64)> {
    let mut index: Vec<(u16, i64)> = state.entries[..used]
        .iter()
        .map(|e| {
            let raw = usize::try_from(e.id)
                .ok()
                .and_then(|id| state.id_to_index.get(id));
            (e.id as u16, raw.map_or(-1, |&i| i64::from(i)))
        })
        .collect();
    index.sort_unstable();
    index
}

/// The port-specific invariants of a raw `struct kvm_memslots`.
pub(super) fn check_raw(
    family: Family,
    s: &RawState,
    full: bool,
    arch: ArchProfile,
) -> Result<(), String> {
    let slots_num = usize::from(arch.mem_slots_num());
    let used = usize::try_from(s.used_slots)
        .ok()
        .filter(|&u| u <= slots_num)
        .ok_or_else(|| format!("used_slots is {}", s.used_slots))?;
    if s.id_to_index.len() != slots_num {
        return Err(format!("id_to_index has {} entries", s.id_to_index.len()));
    }
    if family == Family::Modern && s.lru_slot == NOT_IN_ARRAY {
        // No lookup may find it (a stale pointer, a freed slot): what the kernel clears in
        // kvm_replace_memslot().
        return Err("last_used_slot points at a slot the gfn tree does not hold".to_string());
    }
    if s.capacity < used {
        return Err(format!(
            "used_slots {used} but memslots[] has room for {} entries",
            s.capacity
        ));
    }
    for (i, e) in s.entries.iter().enumerate().take(used) {
        let dirty = e.flags & KVM_MEM_LOG_DIRTY_PAGES != 0;
        if e.has_dirty_bitmap != dirty {
            return Err(format!(
                "entry {i} (id {}): has_dirty_bitmap {} but flags {:#x}",
                e.id, e.has_dirty_bitmap, e.flags
            ));
        }
    }
    if !full {
        return Ok(());
    }
    match family {
        Family::Pre => {
            // id_to_index is a permutation of 0..512 (every id, used or not, has an entry).
            let mut seen = [false; ARRAY_SLOTS];
            for (id, &i) in s.id_to_index.iter().enumerate() {
                match usize::try_from(i).ok().filter(|&i| i < slots_num) {
                    Some(i) if !seen[i] => seen[i] = true,
                    _ => return Err(format!("id_to_index is not a permutation (id {id} -> {i})")),
                }
            }
            if s.entries.len() != slots_num {
                return Err(format!("only {} of 512 entries copied", s.entries.len()));
            }
            for (i, e) in s.entries.iter().enumerate() {
                if i >= used && e.npages != 0 {
                    return Err(format!(
                        "entry {i} (id {}) past used_slots {used} has npages {:#x}",
                        e.id, e.npages
                    ));
                }
                let back = usize::try_from(e.id)
                    .ok()
                    .and_then(|id| s.id_to_index.get(id));
                if back != Some(&(i as i16)) {
                    return Err(format!(
                        "entry {i} holds id {}, whose index is {back:?}",
                        e.id
                    ));
                }
            }
        }
        Family::Post | Family::Post15 | Family::Modern => {
            let mut present = 0;
            for (id, &i) in s.id_to_index.iter().enumerate() {
                if i == -1 {
                    continue;
                }
                present += 1;
                let entry = usize::try_from(i)
                    .ok()
                    .filter(|&i| i < used)
                    .and_then(|i| s.entries.get(i));
                match entry {
                    Some(e) if usize::try_from(e.id).ok() == Some(id) => {}
                    Some(e) => {
                        return Err(format!(
                            "id_to_index[{id}] = {i}, but that entry has id {}",
                            e.id
                        ))
                    }
                    None => {
                        return Err(format!(
                            "id_to_index[{id}] = {i}, outside used_slots {used}"
                        ))
                    }
                }
            }
            if present != used {
                return Err(format!(
                    "{present} ids have an index but used_slots is {used}"
                ));
            }
        }
    }
    Ok(())
}
