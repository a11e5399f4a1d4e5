//! The GFN and host-address range queries after each step (compared as the ids they return,
//! in walk order).

use memslot_reference::ApiSlot;

use crate::ops::{Op, Region2};

/// Half-open ranges `[start, end)` to query.
pub type Ranges = Vec<(u64, u64)>;

/// The GFN ranges and host address ranges to query after `op` (range queries are compared
/// as the ids they return, in walk order): the whole space, and around what the operation
/// named and the slot it changed: the request's own range, a page either side of its start
/// and of its end, the old slot's range; for a lookup, its GFN alone. A handful each.
pub fn range_points(
    layout: &[ApiSlot],
    before: &[ApiSlot],
    op: &Op,
    gfns: &mut Ranges,
    hvas: &mut Ranges,
) {
    const PAGE: u64 = 1 << 12;
    gfns.clear();
    gfns.push((0, u64::MAX));
    hvas.clear();
    hvas.push((0, u64::MAX));
    let mut around = |s: &ApiSlot| {
        let end = s.base_gfn.saturating_add(s.npages);
        gfns.push((s.base_gfn, end));
        let hva_end = s
            .userspace_addr
            .saturating_add(s.npages.saturating_mul(PAGE));
        hvas.push((s.userspace_addr, hva_end));
    };
    match op {
        Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => {
            let id = i32::from(r.id());
            if let Some(old) = before.iter().find(|s| i32::from(s.id) == id) {
                around(old);
            }
            if let Some(now) = layout.iter().find(|s| i32::from(s.id) == id) {
                around(now);
            }
            let (gfn, npages) = (r.guest_phys_addr >> 12, r.memory_size >> 12);
            let end = gfn.saturating_add(npages);
            gfns.extend([
                (gfn, end),
                (gfn.saturating_sub(1), gfn.saturating_add(1)),
                (end.saturating_sub(1), end.saturating_add(1)),
            ]);
            let hva = r.userspace_addr;
            let hva_end = hva.saturating_add(r.memory_size);
            hvas.extend([
                (hva, hva_end),
                (hva.saturating_sub(PAGE), hva.saturating_add(1)),
                (hva_end.saturating_sub(1), hva_end.saturating_add(PAGE)),
            ]);
        }
        Op::Lookup { gfn, .. } => gfns.push((*gfn, gfn.saturating_add(1))),
        Op::Id { .. } | Op::FailPrepare { .. } => {}
    }
    gfns.sort_unstable();
    gfns.dedup();
    hvas.sort_unstable();
    hvas.dedup();
}
