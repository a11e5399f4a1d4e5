//! Generators: "intents" steered by the current layout, resolved into concrete operations.
//!
//! An intent says what kind of request to make ("create a slot at a neighbour's edge", "move a
//! slot over itself", "look up the last page of a slot"); the [`Generator`] looks at the layout
//! of a shadow [`Oracle`] and emits the concrete [`Op`]s. The same code serves the fuzz targets
//! (choices read from the input bytes, see [`crate::decode`]) and the `stress` command (choices
//! from a seeded RNG), through the [`Source`] trait.

use crate::arch_profile::ArchProfile;
use crate::implementations::oracle::Oracle;
use crate::implementations::Slot;
use crate::ops::*;

/// Where a generator's choices come from.
pub trait Source {
    /// The next byte (0 when exhausted).
    fn byte(&mut self) -> u8;
    /// Whether the source has run out.
    fn is_empty(&self) -> bool;

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        (u64::from(self.u32())) | (u64::from(self.u32()) << 32)
    }
    /// A value in `0..n` (`n` > 0), using as few bytes as the range needs.
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            0
        } else if n <= 1 << 8 {
            u64::from(self.byte()) % n
        } else if n <= 1 << 16 {
            u64::from(self.u16()) % n
        } else if n <= 1 << 32 {
            u64::from(self.u32()) % n
        } else {
            self.u64() % n
        }
    }
    /// True with probability `num`/256; false on an exhausted source (byte 0), so that the
    /// zeros a truncated input reads choose the common, cheap branch.
    fn chance(&mut self, num: u8) -> bool {
        u16::from(self.byte()) >= 256 - u16::from(num)
    }
}

/// A kind of step a generator can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Create a slot with a free id somewhere in a gap of the layout.
    CreateInGap,
    /// Create a slot just below or above a neighbour, or overlapping it.
    CreateAtEdge,
    /// Move a slot just below or above a neighbour, over itself, by a page, or anywhere.
    Move,
    /// Delete a present id (or, sometimes, an absent one).
    Delete,
    /// Toggle dirty logging on a slot (sometimes READONLY, which must fail).
    ToggleDirty,
    /// Repeat a recent request (a no-op if it succeeded).
    Repeat,
    /// In-kernel request on a private id (x86-512: 509..511) in both address spaces, as x86 does.
    KernelPrivate,
    /// Create many slots in a row; sometimes fill every slot.
    Fill,
    /// Look up a slot's first or last page, one below, one past, a gap, 0, the top.
    LookupEdge,
    /// Look up a raw GFN.
    LookupRaw,
    /// `id_to_memslot` of a present, absent, private or raw id.
    IdQuery,
    /// A request whose every field is picked from values that hit validation edges.
    RawInteresting,
}

impl Intent {
    pub const ALL: [Intent; 12] = [
        Intent::CreateInGap,
        Intent::CreateAtEdge,
        Intent::Move,
        Intent::Delete,
        Intent::ToggleDirty,
        Intent::Repeat,
        Intent::KernelPrivate,
        Intent::Fill,
        Intent::LookupEdge,
        Intent::LookupRaw,
        Intent::IdQuery,
        Intent::RawInteresting,
    ];
}

/// Intent weights of a generator; a weight of 0 disables an intent.
#[derive(Clone, Debug)]
pub struct Weights(pub Vec<(Intent, u32)>);

impl Weights {
    /// Pick an intent for a number in `0..total()`.
    pub fn pick(&self, mut n: u32) -> Intent {
        for &(intent, w) in &self.0 {
            if n < w {
                return intent;
            }
            n -= w;
        }
        self.0
            .iter()
            .rev()
            .find(|(_, w)| *w > 0)
            .map_or(Intent::LookupRaw, |(i, _)| *i)
    }

    pub fn total(&self) -> u32 {
        self.0.iter().map(|(_, w)| w).sum()
    }

    /// Everything, for the `differential` target and stress runs.
    pub fn differential() -> Weights {
        use Intent::*;
        Weights(vec![
            (CreateInGap, 30),
            (CreateAtEdge, 25),
            (Move, 30),
            (Delete, 22),
            (ToggleDirty, 15),
            (Repeat, 10),
            (KernelPrivate, 10),
            (Fill, 4),
            (LookupEdge, 35),
            (LookupRaw, 10),
            (IdQuery, 15),
            (RawInteresting, 45),
        ])
    }

    /// Layouts plus dense lookups, for the `lookups` target.
    pub fn lookups() -> Weights {
        use Intent::*;
        Weights(vec![
            (CreateInGap, 40),
            (CreateAtEdge, 25),
            (Move, 12),
            (Delete, 8),
            (ToggleDirty, 2),
            (KernelPrivate, 10),
            (Fill, 8),
            (LookupEdge, 100),
            (LookupRaw, 30),
            (IdQuery, 16),
        ])
    }

    /// Request fields, for the `requests` target (validation order and errno).
    pub fn requests() -> Weights {
        use Intent::*;
        Weights(vec![
            (RawInteresting, 131),
            (CreateInGap, 25),
            (CreateAtEdge, 25),
            (Move, 25),
            (Delete, 20),
            (ToggleDirty, 10),
            (Repeat, 10),
            (KernelPrivate, 5),
        ])
    }
}

/// x86's private slots as `__x86_set_memory_region` creates them: (id, gpa, pages).
pub const X86_PRIVATE_SLOTS: [(u16, u64, u64); 3] = [
    (TSS_PRIVATE_MEMSLOT, 0xfeff_d000, 3),
    (APIC_ACCESS_PAGE_PRIVATE_MEMSLOT, 0xfee0_0000, 1),
    (IDENTITY_PAGETABLE_PRIVATE_MEMSLOT, 0xfeff_c000, 1),
];

/// A user address for a slot at `gpa`: deterministic, page aligned, valid for any legal size.
pub fn default_hva(gpa: u64) -> u64 {
    0x1000_0000_0000 + (gpa & ((1 << 44) - 1))
}

/// Resolves intents against a shadow oracle and collects the concrete operations.
pub struct Generator {
    /// The limits of the lockstep the program is for: which ids are user, private, valid.
    arch: ArchProfile,
    shadow: Oracle,
    ops: Vec<Op>,
    /// Recent requests, for [`Intent::Repeat`].
    history: Vec<Op>,
    /// The address space the last intent chose: the next one mostly stays there, so that
    /// multi-step patterns (create, then overlap it, query it, toggle it) arise in both.
    current_as: u16,
    /// Stop emitting after this many operations.
    pub max_ops: usize,
    /// Send some requests as `KVM_SET_USER_MEMORY_REGION2` (the stress engine's programs; the
    /// fuzz decoding leaves it off, so that committed inputs decode as they always did): the
    /// state of the generator's own random stream for it, apart from the intents' source, so
    /// that a program's intents and layout are those it had without REGION2.
    pub region2: Option<u64>,
}

impl Default for Generator {
    fn default() -> Self {
        Generator::new(usize::MAX)
    }
}

impl Generator {
    pub fn new(max_ops: usize) -> Generator {
        Generator::with_arch(max_ops, ArchProfile::X86_512)
    }

    /// A generator for a lockstep at `arch`.
    pub fn with_arch(max_ops: usize, arch: ArchProfile) -> Generator {
        Generator {
            arch,
            shadow: Oracle::with_arch(arch),
            ops: Vec::new(),
            history: Vec::new(),
            current_as: 0,
            max_ops,
            region2: None,
        }
    }

    /// An address space for the next intent: mostly the current one, sometimes the other
    /// (AS 1 is x86's SMM space), rarely any 16-bit value (a request the kernel must refuse,
    /// which does not move the current one).
    fn pick_as(&mut self, src: &mut impl Source) -> u16 {
        match src.byte() {
            0..=215 => self.current_as,
            216..=251 => {
                self.current_as ^= 1;
                self.current_as
            }
            _ => src.u16(),
        }
    }

    pub fn arch(&self) -> ArchProfile {
        self.arch
    }

    /// x86's private slot `k` (0: TSS, 1: APIC access page, 2: identity page table), which
    /// `vmx.h` numbers from `KVM_USER_MEM_SLOTS` on.
    pub fn private_id(&self, k: u16) -> u16 {
        self.arch.user_mem_slots() + k
    }

    /// Ids a fill may use, in increasing order: the private ones only when filling everything.
    fn fill_limit(&self, all: bool) -> u16 {
        if all {
            self.arch.mem_slots_num()
        } else {
            self.arch.user_mem_slots()
        }
    }

    /// The operations emitted so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    pub fn is_full(&self) -> bool {
        self.ops.len() >= self.max_ops
    }

    /// The shadow state (every emitted operation applied).
    pub fn shadow(&self) -> &Oracle {
        &self.shadow
    }

    /// Append a concrete operation.
    pub fn emit(&mut self, op: Op) {
        if self.is_full() {
            return;
        }
        self.shadow.apply(&op);
        if op.region().is_some() {
            if self.history.len() == 16 {
                self.history.remove(0);
            }
            self.history.push(op);
        }
        self.ops.push(op);
    }

    /// A request on `slot` of `as_id`: the ioctl for user ids, the in-kernel path otherwise.
    pub fn request(&mut self, as_id: u16, id: u16, gpa: u64, size: u64, hva: u64, flags: u32) {
        let r = Region::new(as_id, id, gpa, size, hva, flags);
        self.emit(if id >= self.arch.user_mem_slots() {
            Op::KSet(r)
        } else {
            Op::Set(r)
        });
    }

    /// Create (or re-issue) a slot at `gfn`, `npages` pages, with the default hva.
    pub fn create(&mut self, as_id: u16, id: u16, gfn: u64, npages: u64, flags: u32) {
        let gpa = gfn << PAGE_SHIFT;
        self.request(
            as_id,
            id,
            gpa,
            npages << PAGE_SHIFT,
            default_hva(gpa),
            flags,
        );
    }

    /// Delete a slot (using its own fields, as QEMU does).
    pub fn delete(&mut self, as_id: u16, id: u16) {
        let (gpa, hva) = match self.shadow.get(as_id, id) {
            Some(s) => (s.base_gfn << PAGE_SHIFT, s.userspace_addr),
            None => (0, 0),
        };
        self.request(as_id, id, gpa, 0, hva, 0);
    }

    /// Move an existing slot to `gfn`, keeping its size, hva and flags.
    pub fn move_to(&mut self, as_id: u16, id: u16, gfn: u64) {
        if let Some(s) = self.shadow.get(as_id, id) {
            self.request(
                as_id,
                id,
                gfn << PAGE_SHIFT,
                s.npages << PAGE_SHIFT,
                s.userspace_addr,
                s.flags,
            );
        }
    }

    /// Set the flags of an existing slot (FLAGS_ONLY).
    pub fn set_flags(&mut self, as_id: u16, id: u16, flags: u32) {
        if let Some(s) = self.shadow.get(as_id, id) {
            self.request(
                as_id,
                id,
                s.base_gfn << PAGE_SHIFT,
                s.npages << PAGE_SHIFT,
                s.userspace_addr,
                flags,
            );
        }
    }

    /// Resolve one intent with choices from `src`.
    pub fn intent(&mut self, intent: Intent, src: &mut impl Source) {
        let start = self.ops.len();
        self.resolve(intent, src);
        if self.region2.is_some() {
            self.some_as_region2(start);
        }
    }

    /// The next value of the REGION2 stream (splitmix64).
    fn region2_next(&mut self) -> u64 {
        let state = self.region2.get_or_insert(0);
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Rewrites some of the ioctl requests emitted from `start` on as the REGION2 ioctl with
    /// guest_memfd fields a default VM must ignore (the same request there, so the shadow
    /// holds), and now and then follows one with its `KVM_MEM_GUEST_MEMFD` twin, which it
    /// must refuse.
    fn some_as_region2(&mut self, start: usize) {
        for i in start..self.ops.len() {
            let Op::Set(region) = self.ops[i] else {
                continue;
            };
            let roll = self.region2_next();
            if !roll.is_multiple_of(4) {
                continue;
            }
            let value = self.region2_next();
            let guest_memfd_offset = match (roll >> 2) % 4 {
                0 => 0,
                1 => (value % (1 << 20)) << PAGE_SHIFT,
                2 => value | 1,
                _ => u64::MAX - value % (1 << 20),
            };
            let r2 = Region2 {
                region,
                guest_memfd_offset,
                guest_memfd: [0, 3, (value >> 32) as u32][((roll >> 4) % 3) as usize],
            };
            self.ops[i] = Op::Set2(r2);
            if (roll >> 8).is_multiple_of(8) {
                let flags = region.flags | KVM_MEM_GUEST_MEMFD;
                let region = Region { flags, ..region };
                self.emit(Op::Set2(Region2 { region, ..r2 }));
            }
        }
    }

    fn resolve(&mut self, intent: Intent, src: &mut impl Source) {
        match intent {
            Intent::CreateInGap => self.create_in_gap(src),
            Intent::CreateAtEdge => self.create_at_edge(src),
            Intent::Move => self.move_slot(src),
            Intent::Delete => self.delete_slot(src),
            Intent::ToggleDirty => self.toggle_dirty(src),
            Intent::Repeat => self.repeat(src),
            Intent::KernelPrivate => self.kernel_private(src),
            Intent::Fill => self.fill(src),
            Intent::LookupEdge => self.lookup_edge(src),
            Intent::LookupRaw => {
                let as_id = self.pick_as(src);
                let gfn = match src.below(4) {
                    0 => src.u64(),
                    1 => src.u64() & MAX_GFN,
                    _ => u64::from(src.u32()) & 0xf_ffff,
                };
                self.emit(Op::Lookup { as_id, gfn });
            }
            Intent::IdQuery => self.id_query(src),
            Intent::RawInteresting => self.raw_interesting(src),
        }
    }

    fn layout(&self, as_id: u16) -> Vec<Slot> {
        self.shadow.layout(as_id)
    }

    /// A present slot of the address space, if it has any.
    fn pick_slot(&self, src: &mut impl Source, as_id: u16) -> Option<Slot> {
        let layout = self.layout(as_id);
        if layout.is_empty() {
            return None;
        }
        Some(layout[src.below(layout.len() as u64) as usize])
    }

    /// A free user id (small ids preferred), or a present one if all are taken.
    fn free_id(&self, src: &mut impl Source, as_id: u16) -> u16 {
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

    fn create_in_gap(&mut self, src: &mut impl Source) {
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

    fn create_at_edge(&mut self, src: &mut impl Source) {
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

    fn move_slot(&mut self, src: &mut impl Source) {
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

    fn delete_slot(&mut self, src: &mut impl Source) {
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

    fn toggle_dirty(&mut self, src: &mut impl Source) {
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

    fn repeat(&mut self, src: &mut impl Source) {
        if self.history.is_empty() {
            return self.create_in_gap(src);
        }
        let back = src.below(self.history.len().min(8) as u64) as usize;
        let op = self.history[self.history.len() - 1 - back];
        self.emit(op);
    }

    fn kernel_private(&mut self, src: &mut impl Source) {
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

    fn fill(&mut self, src: &mut impl Source) {
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

    fn lookup_edge(&mut self, src: &mut impl Source) {
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

    fn id_query(&mut self, src: &mut impl Source) {
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

    fn raw_interesting(&mut self, src: &mut impl Source) {
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

/// The free GFN ranges `[start, end)` of a layout (array order), lowest first, within
/// `[0, MAX_GFN)`. Never empty: a full GFN space still yields a one-page pseudo-gap at the top.
pub fn gaps(layout: &[Slot]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    for s in layout.iter().rev() {
        if s.base_gfn > cursor {
            out.push((cursor, s.base_gfn));
        }
        cursor = cursor.max(s.end_gfn());
    }
    if cursor < MAX_GFN {
        out.push((cursor, MAX_GFN));
    }
    if out.is_empty() {
        out.push((MAX_GFN - 1, MAX_GFN));
    }
    out
}

/// A [`Source`] backed by a seeded RNG (the `stress` command, property tests).
pub struct RngSource<R>(pub R);

impl<R: rand::RngCore> Source for RngSource<R> {
    fn byte(&mut self) -> u8 {
        (self.0.next_u32() & 0xff) as u8
    }
    fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn gaps_cover_the_free_space() {
        let slot = |id, base, npages| Slot {
            id,
            base_gfn: base,
            npages,
            flags: 0,
            userspace_addr: 0,
        };
        let layout = vec![slot(2, 0x100, 0x10), slot(1, 0, 0x10)];
        assert_eq!(gaps(&layout), vec![(0x10, 0x100), (0x110, MAX_GFN)]);
        assert_eq!(gaps(&[]), vec![(0, MAX_GFN)]);
    }

    #[test]
    fn every_intent_resolves_on_empty_and_busy_layouts() {
        let mut src = RngSource(rand::rngs::SmallRng::seed_from_u64(7));
        let mut g = Generator::new(100_000);
        for round in 0..50 {
            for intent in Intent::ALL {
                g.intent(intent, &mut src);
            }
            if round == 25 {
                g.intent(Intent::Fill, &mut src);
            }
        }
        assert!(g.ops().len() >= 600);
        assert!(g.ops().iter().any(|op| matches!(op, Op::KSet(_))));
        assert!(g.shadow().len(0) > 5);
    }
}
