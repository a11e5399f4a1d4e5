//! How each intent resolves against the shadow layout: which slot, gap, edge, id or value it
//! picks, and the operations it emits.

use super::{default_hva, gaps, Generator, Source, X86_PRIVATE_SLOTS};
use crate::implementations::Slot;
use crate::ops::*;

impl Generator {
    pub(super) fn layout(&self, as_id: u16) -> Vec<Slot> {
        self.shadow.layout(as_id)
    }

    /// A present slot of the address space, if it has any.
    pub(super) fn pick_slot(&self, src: &mut impl Source, as_id: u16) -> Option<Slot> {
        let layout = self.layout(as_id);
        if layout.is_empty() {
            return None;
        }
        Some(layout[src.below(layout.len() as u64) as usize])
    }

    /// A free user id (small ids preferred), or a present one if all are taken.
    pub(super) fn free_id(&self, src: &mut impl Source, as_id: u16) -> u16 {
        let user = self.arch.user_mem_slots();
        let start = if src.chance(32) {
            src.below(u64::from(user))
        } else {
            src.below(32)
        } as u16;
        (0..user)
            .map(|k| (start + k) % user)
            .find(|&id| self.shadow.get(as_id, id).is_none())
            .unwrap_or(start)
    }

    pub(super) fn create_in_gap(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let id = self.free_id(src, as_id);
        let gaps = gaps(&self.layout(as_id));
        let (start, end) = gaps[src.below(gaps.len() as u64) as usize];
        let len = end - start;
        let npages = pick_npages(src).min(len).max(1);
        let gfn = match src.below(3) {
            0 => start,
            1 => end - npages,
            _ => start + src.below(len - npages + 1),
        };
        let flags = pick_flags(src);
        self.create(as_id, id, gfn, npages, flags);
    }

    pub(super) fn create_at_edge(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let Some(n) = self.pick_slot(src, as_id) else {
            return self.create_in_gap(src);
        };
        let id = if src.chance(32) {
            n.id as u16
        } else {
            self.free_id(src, as_id)
        };
        let mut npages = pick_npages(src);
        let base = match src.below(7) {
            0 => n.base_gfn.saturating_sub(npages), // just below
            1 => n.end_gfn(),                       // just above
            2 => n.base_gfn.saturating_sub(npages.saturating_sub(1)), // overlaps the first page
            3 => n.end_gfn() - 1,                   // overlaps the last page
            4 => n.base_gfn,                        // same base
            5 => {
                npages = n.npages + 2; // contains it
                n.base_gfn.saturating_sub(1)
            }
            _ => {
                npages = 1; // inside it
                n.base_gfn + n.npages / 2
            }
        };
        let flags = pick_flags(src);
        self.create(as_id, id, base.min(MAX_GFN), npages, flags);
    }

    pub(super) fn move_slot(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let layout = self.layout(as_id);
        if layout.is_empty() {
            return self.create_in_gap(src);
        }
        let i = src.below(layout.len() as u64) as usize;
        let s = layout[i];
        // A neighbour in array order: above (i - 1) or below (i + 1), else any slot.
        let neighbour = match src.below(3) {
            0 if i > 0 => layout[i - 1],
            1 if i + 1 < layout.len() => layout[i + 1],
            _ => layout[src.below(layout.len() as u64) as usize],
        };
        let gfn = match src.below(7) {
            0 => neighbour.base_gfn.saturating_sub(s.npages), // just below the neighbour
            1 => neighbour.end_gfn(),                         // just above it
            2 => s.base_gfn + 1 + src.below(s.npages),        // up, over itself
            3 => s.base_gfn.saturating_sub(1 + src.below(s.npages)), // down, over itself
            4 => {
                let gaps = gaps(&layout);
                let (start, end) = gaps[src.below(gaps.len() as u64) as usize];
                if end - start >= s.npages {
                    start + src.below(end - start - s.npages + 1)
                } else {
                    start
                }
            }
            5 => s.base_gfn ^ 1,
            _ => src.u64() & MAX_GFN,
        };
        let mut flags = s.flags;
        if src.chance(48) {
            flags ^= KVM_MEM_LOG_DIRTY_PAGES; // a MOVE may change dirty logging too
        }
        let id = s.id as u16;
        self.request(
            as_id,
            id,
            gfn.min(MAX_GFN) << PAGE_SHIFT,
            s.npages << PAGE_SHIFT,
            s.userspace_addr,
            flags,
        );
    }

    pub(super) fn delete_slot(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        match self.pick_slot(src, as_id) {
            Some(s) if !src.chance(32) => {
                let gpa = if src.chance(128) {
                    s.base_gfn << PAGE_SHIFT
                } else {
                    0
                };
                let hva = if src.chance(128) { s.userspace_addr } else { 0 };
                self.request(as_id, s.id as u16, gpa, 0, hva, 0);
            }
            _ => {
                let id = self.free_id(src, as_id);
                self.request(as_id, id, 0, 0, 0, 0);
            }
        }
    }

    pub(super) fn toggle_dirty(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let Some(s) = self.pick_slot(src, as_id) else {
            return self.create_in_gap(src);
        };
        let bit = if src.chance(24) {
            KVM_MEM_READONLY
        } else {
            KVM_MEM_LOG_DIRTY_PAGES
        };
        self.set_flags(as_id, s.id as u16, s.flags ^ bit);
    }

    pub(super) fn repeat(&mut self, src: &mut impl Source) {
        if self.history.is_empty() {
            return self.create_in_gap(src);
        }
        let back = src.below(self.history.len().min(8) as u64) as usize;
        let op = self.history[self.history.len() - 1 - back];
        self.emit(op);
    }

    pub(super) fn kernel_private(&mut self, src: &mut impl Source) {
        let (id, gpa, pages) = X86_PRIVATE_SLOTS[src.below(3) as usize];
        let k = id - TSS_PRIVATE_MEMSLOT;
        let (id, hva) = (
            self.private_id(k),
            0x7fff_f000_0000 + u64::from(k) * 0x10_0000,
        );
        let both = !src.chance(64);
        let spaces: &[u16] = if both { &[0, 1] } else { &[0] };
        let present = self.shadow.get(0, id).is_some();
        let (gpa, size) = match src.below(4) {
            0 if present => (0, 0), // delete
            1 => {
                // somewhere else: a gap of AS 0
                let gaps = gaps(&self.layout(0));
                let (start, _) = gaps[src.below(gaps.len() as u64) as usize];
                (start << PAGE_SHIFT, pages << PAGE_SHIFT)
            }
            _ => (gpa, pages << PAGE_SHIFT), // where x86 puts it
        };
        for &as_id in spaces {
            self.emit(Op::KSet(Region::new(as_id, id, gpa, size, hva, 0)));
        }
    }

    pub(super) fn fill(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        // Filling every slot makes every later step cost O(KVM_MEM_SLOTS_NUM): keep it rare.
        let all = src.chance(2);
        let count = if all {
            usize::from(self.arch.mem_slots_num())
        } else if src.chance(32) {
            1 + src.below(64) as usize
        } else {
            1 + src.below(12) as usize
        };
        let npages = [1, 2, 16, 512][src.below(4) as usize];
        let gap = [0, 1, npages][src.below(3) as usize];
        let layout = self.layout(as_id);
        // Upward from the highest slot, or (on a full input) downward from a high anchor, below
        // the lowest slot: then the lowest ids hold the highest GFNs, as in a guest whose
        // firmware maps its first regions at the top of a large address space.
        if src.chance(128) {
            let anchor = [1u64 << 20, 1 << 36, 1 << 50][src.below(3) as usize];
            let mut top = layout.last().map_or(anchor, |s| s.base_gfn.min(anchor));
            let mut next_id = 0;
            for _ in 0..count {
                if self.is_full() || top < npages + gap {
                    break;
                }
                while next_id < self.fill_limit(all) && self.shadow.get(as_id, next_id).is_some() {
                    next_id += 1;
                }
                if next_id >= self.fill_limit(all) {
                    break;
                }
                top -= npages + gap;
                self.create(as_id, next_id, top, npages, 0);
                next_id += 1;
            }
            return;
        }
        let mut gfn = layout.first().map_or(0, |s| s.end_gfn() + gap);
        let limit = self.fill_limit(all);
        let mut next_id = 0;
        for _ in 0..count {
            if self.is_full() || gfn + npages > MAX_GFN {
                break;
            }
            while next_id < limit && self.shadow.get(as_id, next_id).is_some() {
                next_id += 1;
            }
            if next_id >= limit {
                break;
            }
            self.create(as_id, next_id, gfn, npages, 0);
            next_id += 1;
            gfn += npages + gap;
        }
    }

    pub(super) fn lookup_edge(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let layout = self.layout(as_id);
        let kind = src.below(10);
        let gfn = match layout.get(src.below(layout.len().max(1) as u64) as usize) {
            Some(s) if kind < 6 => match kind {
                0 => s.base_gfn,
                1 => s.end_gfn() - 1,
                2 => s.base_gfn.wrapping_sub(1),
                3 => s.end_gfn(),
                4 => s.base_gfn + src.below(s.npages),
                _ => {
                    let gaps = gaps(&layout);
                    let (start, end) = gaps[src.below(gaps.len() as u64) as usize];
                    start + (end - start) / 2
                }
            },
            _ => match kind % 4 {
                0 => 0,
                1 => MAX_GFN,
                2 => u64::MAX >> PAGE_SHIFT,
                _ => u64::MAX,
            },
        };
        self.emit(Op::Lookup { as_id, gfn });
    }

    pub(super) fn id_query(&mut self, src: &mut impl Source) {
        let as_id = self.pick_as(src);
        let id = match src.below(4) {
            0 | 1 => match self.pick_slot(src, as_id) {
                Some(s) => s.id as u16,
                None => self.free_id(src, as_id),
            },
            // Both sides of the private ids (x86-512: 509..512).
            2 => self.private_id(src.below(4) as u16),
            _ => {
                if src.chance(128) {
                    self.free_id(src, as_id)
                } else {
                    src.u16()
                }
            }
        };
        self.emit(Op::Id { as_id, id });
    }

    pub(super) fn raw_interesting(&mut self, src: &mut impl Source) {
        let layout = self.layout(0);
        let near: Option<Slot> = if layout.is_empty() {
            None
        } else {
            Some(layout[src.below(layout.len() as u64) as usize])
        };
        let slot = match src.below(17) {
            0 => 0,
            1 => 1,
            // The user and private limits (x86-512: 508..512).
            k @ 2..=6 => u32::from(self.private_id(0)) + k as u32 - 3,
            7 => 0xffff,
            8 => 0x1_0000,
            9 => 0x1_0001,
            10 => 0x2_0000,
            11 => 0xffff_0000,
            12 => u32::MAX,
            13 => 0x1_0000 | u32::from(self.free_id(src, 1)),
            14 | 15 => near.map_or(3, |s| s.id as u32),
            _ => src.u32(),
        };
        let flags = match src.below(10) {
            0..=3 => 0,
            4 => KVM_MEM_LOG_DIRTY_PAGES,
            5 => KVM_MEM_READONLY,
            6 => 3,
            7 => 4,
            8 => KVM_MEMSLOT_INVALID,
            _ => src.u32(),
        };
        let gpa = match src.below(12) {
            0 => 0,
            1 => 0x1000,
            2 => 0xfff,
            3 => 0x800,
            4 => 1 << 32,
            5 => (MAX_GFN - 1) << PAGE_SHIFT,
            6 => !0xfff,
            7 => u64::MAX,
            8 | 9 => near.map_or(0x10_0000, |s| s.base_gfn << PAGE_SHIFT),
            10 => near.map_or(0x10_0000, |s| (s.base_gfn + 1) << PAGE_SHIFT),
            _ => src.u64(),
        };
        let size = match src.below(13) {
            0 => 0,
            1 => 0x1000,
            2 => 0xfff,
            3 => 0x1001,
            4 => 2 << 20,
            5 => 1 << 30,
            6 => KVM_MEM_MAX_NR_PAGES << PAGE_SHIFT,
            7 => (KVM_MEM_MAX_NR_PAGES + 1) << PAGE_SHIFT,
            8 => !0xfff,
            9 => 1 << 63,
            10 | 11 => near.map_or(0x1000, |s| s.npages << PAGE_SHIFT),
            _ => src.u64(),
        };
        let hva = match src.below(12) {
            0 => 0,
            1 => 0x1000,
            2 => TASK_SIZE_MAX - 0x1000,
            3 => TASK_SIZE_MAX,
            4 => 1 << 47,
            5 => 0xffff_8000_0000_0000,
            6 => !0xfff,
            7 => 0x123,
            8 | 9 => near.map_or(0, |s| s.userspace_addr),
            10 => default_hva(gpa),
            _ => src.u64(),
        };
        let r = Region {
            slot,
            flags,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: hva,
        };
        self.emit(if src.chance(32) {
            Op::KSet(r)
        } else {
            Op::Set(r)
        });
    }
}

fn pick_npages(src: &mut impl Source) -> u64 {
    match src.below(16) {
        0..=2 => 1,
        3 => 2,
        4 => 3,
        5 => 4,
        6 => 16,
        7 => 255,
        8 => 256,
        9 => 512,
        10 => 1024,
        11 => 0x4_0000,
        12 => 0x8_0000,
        13 => KVM_MEM_MAX_NR_PAGES,
        14 => 1 + u64::from(src.u16()),
        _ => 1 + (u64::from(src.u32()) & KVM_MEM_MAX_NR_PAGES),
    }
}

fn pick_flags(src: &mut impl Source) -> u32 {
    match src.below(8) {
        0..=3 => 0,
        4 | 5 => KVM_MEM_LOG_DIRTY_PAGES,
        6 => KVM_MEM_READONLY,
        _ => KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY,
    }
}
