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

mod intents;

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
