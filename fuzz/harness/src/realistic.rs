//! Realistic guest layouts and their life cycles, as VMMs drive KVM: used by `stress` for long
//! sequences and by `memslot-diff generate` for generated seeds.
//!
//! Each script appends to a [`Generator`] (so it composes with random intents) and draws its
//! parameters (RAM size, number of DIMMs, which blocks get plugged) from a [`Source`].

use crate::generate::{default_hva, Generator, Source, X86_PRIVATE_SLOTS};
use crate::ops::{Op, Region, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, PAGE_SHIFT};

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

/// A script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// QEMU-style x86 PC: low RAM, VGA and ROM holes, PAM remapping, PCI hole, high RAM,
    /// a VGA framebuffer with dirty logging, SMM in AS 1, the private slots.
    QemuPc,
    /// A minimal microVM (Firecracker-like): one or two RAM slots and the TSS.
    MicroVm,
    /// Hot-plugged DIMMs above the high RAM, some unplugged again.
    Dimms,
    /// Many small virtio-mem-style blocks plugged and unplugged in random order.
    VirtioMem,
    /// Live migration: dirty logging on every slot, churn, lookups, logging off.
    Migration,
}

impl Script {
    pub const ALL: [Script; 5] = [
        Script::QemuPc,
        Script::MicroVm,
        Script::Dimms,
        Script::VirtioMem,
        Script::Migration,
    ];

    /// Run the script (the later ones build on whatever layout is already there).
    pub fn run(self, g: &mut Generator, src: &mut impl Source) {
        match self {
            Script::QemuPc => qemu_pc(g, src),
            Script::MicroVm => microvm(g, src),
            Script::Dimms => dimms(g, src),
            Script::VirtioMem => virtio_mem(g, src),
            Script::Migration => migration(g, src),
        }
    }
}

fn set(g: &mut Generator, as_id: u16, id: u16, gpa: u64, size: u64, flags: u32) {
    g.request(as_id, id, gpa, size, default_hva(gpa), flags);
}

fn lookup(g: &mut Generator, as_id: u16, gpa: u64) {
    g.emit(Op::Lookup {
        as_id,
        gfn: gpa >> PAGE_SHIFT,
    });
}

/// x86's private slots, created in-kernel in both address spaces, where KVM puts them.
pub fn private_slots(g: &mut Generator) {
    for (id, gpa, pages) in X86_PRIVATE_SLOTS {
        for as_id in 0..2 {
            let hva = 0x7fff_f000_0000 + u64::from(id) * 0x10_0000;
            g.emit(Op::KSet(Region::new(
                as_id,
                id,
                gpa,
                pages << PAGE_SHIFT,
                hva,
                0,
            )));
        }
    }
}

fn qemu_pc(g: &mut Generator, src: &mut impl Source) {
    let ram = [512 * M, 2 * G, 3 * G, 4 * G, 8 * G, 16 * G][src.below(6) as usize];
    let below_4g = ram.min(3 * G);
    let above_4g = ram - below_4g;
    // AS 0: RAM below 640K, the BIOS ROMs, RAM from 1M to the PCI hole, the flash at the top
    // of 4G, RAM above 4G.
    set(g, 0, 0, 0, 640 * K, 0);
    set(g, 0, 1, 0xc0000, 128 * K, KVM_MEM_READONLY); // option ROMs (pc.rom)
    set(g, 0, 2, 0xe0000, 128 * K, KVM_MEM_READONLY); // isa-bios
    set(g, 0, 3, M, below_4g - M, 0);
    set(g, 0, 4, 4 * G - 256 * K, 256 * K, KVM_MEM_READONLY); // pc.bios
    if above_4g > 0 {
        set(g, 0, 5, 4 * G, above_4g, 0);
    }
    private_slots(g);
    // SMM (AS 1): the same RAM plus SMRAM in the VGA hole.
    set(g, 1, 0, 0, 640 * K, 0);
    set(g, 1, 1, 0xa0000, 128 * K, 0);
    set(g, 1, 3, M, below_4g - M, 0);
    // The firmware opens PAM: the BIOS area becomes RAM in 16K pieces (readonly cannot be
    // toggled, so QEMU deletes and re-creates), and closes it again.
    g.delete(0, 2);
    for i in 0..8u16 {
        set(g, 0, 10 + i, 0xe0000 + u64::from(i) * 16 * K, 16 * K, 0);
    }
    lookup(g, 0, 0xf0000);
    for i in 0..8u16 {
        g.delete(0, 10 + i);
    }
    set(g, 0, 2, 0xe0000, 128 * K, KVM_MEM_READONLY);
    // The VGA framebuffer BAR, with dirty logging for display updates, moved by the BIOS.
    set(g, 0, 6, 0xfd00_0000, 16 * M, KVM_MEM_LOG_DIRTY_PAGES);
    g.move_to(0, 6, 0xf000_0000 >> PAGE_SHIFT);
    // Typical guest accesses.
    for gpa in [
        0x7c00,
        0xb8000,
        0xf_fff0,
        0xfee0_0000,
        M,
        below_4g - 4 * K,
        4 * G,
        0xffff_fff0,
    ] {
        lookup(g, 0, gpa);
    }
    g.emit(Op::Lookup {
        as_id: 1,
        gfn: 0xa0,
    });
    g.emit(Op::Id { as_id: 0, id: 3 });
}

fn microvm(g: &mut Generator, src: &mut impl Source) {
    let ram = [128 * M, 256 * M, G, 4 * G][src.below(4) as usize];
    let low = ram.min(3 * G);
    set(g, 0, 0, 0, low, 0);
    if ram > low {
        set(g, 0, 1, 4 * G, ram - low, 0);
    }
    // KVM_SET_TSS_ADDR at 0xfffbd000 creates the TSS slot in-kernel.
    for as_id in 0..2 {
        g.emit(Op::KSet(Region::new(
            as_id,
            g.private_id(0),
            0xfffb_d000,
            3 * 4 * K,
            0x7fff_0000_0000,
            0,
        )));
    }
    for gpa in [0, 0x7000, M, low - 4 * K, low, 0xfffb_d000] {
        lookup(g, 0, gpa);
    }
}

fn first_free(g: &Generator, as_id: u16, from: u16) -> u16 {
    let user = g.arch().user_mem_slots();
    (from..user)
        .find(|&id| g.shadow().get(as_id, id).is_none())
        .unwrap_or(user - 1)
}

fn ram_top(g: &Generator) -> u64 {
    let top = g
        .shadow()
        .layout(0)
        .first()
        .map_or(4 * G, |s| s.end_gfn() << PAGE_SHIFT);
    top.max(4 * G).next_multiple_of(G)
}

fn dimms(g: &mut Generator, src: &mut impl Source) {
    let n = 1 + src.below(8);
    let mut plugged = Vec::new();
    let mut base = ram_top(g);
    for _ in 0..n {
        let size = [128 * M, 512 * M, G, 2 * G][src.below(4) as usize];
        let id = first_free(g, 0, 16);
        set(g, 0, id, base, size, 0);
        lookup(g, 0, base + size - 4 * K);
        plugged.push(id);
        base += size.next_multiple_of(G);
    }
    for id in plugged {
        if src.chance(96) {
            g.delete(0, id);
        }
    }
}

fn virtio_mem(g: &mut Generator, src: &mut impl Source) {
    let block = [2 * M, 4 * M, 128 * M][src.below(3) as usize];
    let blocks = 8 + src.below(120);
    let region = ram_top(g);
    let mut ids: Vec<Option<u16>> = vec![None; blocks as usize];
    for _ in 0..blocks * 2 {
        let b = src.below(blocks) as usize;
        let gpa = region + b as u64 * block;
        match ids[b] {
            None => {
                let id = first_free(g, 0, 32);
                set(g, 0, id, gpa, block, 0);
                ids[b] = Some(id);
            }
            Some(id) => {
                g.delete(0, id);
                ids[b] = None;
            }
        }
        if src.chance(64) {
            lookup(g, 0, gpa + block / 2);
        }
    }
}

fn migration(g: &mut Generator, src: &mut impl Source) {
    let slots = g.shadow().layout(0);
    for s in &slots {
        if s.flags & KVM_MEM_READONLY == 0 {
            g.set_flags(0, s.id as u16, s.flags | KVM_MEM_LOG_DIRTY_PAGES);
        }
    }
    for _ in 0..src.below(16) {
        if let Some(s) = slots.get(src.below(slots.len().max(1) as u64) as usize) {
            g.emit(Op::Lookup {
                as_id: 0,
                gfn: s.base_gfn + src.below(s.npages),
            });
        }
    }
    for s in &slots {
        if s.flags & KVM_MEM_LOG_DIRTY_PAGES == 0 && s.flags & KVM_MEM_READONLY == 0 {
            g.set_flags(0, s.id as u16, s.flags);
        }
    }
}
