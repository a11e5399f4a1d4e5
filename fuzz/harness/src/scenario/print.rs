//! Printing operations in the canonical scenario form.

use std::fmt;

use crate::arch_profile::ArchProfile;
use crate::ops::{Op, Region, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY};

/// [`print`] for a run at `arch`: an `arch` line first unless it is the default.
pub fn print_at(arch: ArchProfile, ops: &[Op]) -> String {
    if arch == ArchProfile::default() {
        return print(ops);
    }
    format!("arch {}\n{}", arch.name(), print(ops))
}

/// Print a whole scenario, one canonical line per operation.
pub fn print(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        out.push_str(&op.to_string());
        out.push('\n');
    }
    out
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Set(r) => write!(f, "set {}", RegionFields(r)),
            Op::KSet(r) => write!(f, "kset {}", RegionFields(r)),
            Op::Set2(r) => write!(
                f,
                "set2 {} gmem_offset={} gmem={}",
                RegionFields(&r.region),
                hex(r.guest_memfd_offset),
                r.guest_memfd
            ),
            Op::Lookup { as_id, gfn } => write!(f, "lookup as={as_id} gfn={}", hex(*gfn)),
            Op::Id { as_id, id } => write!(f, "id as={as_id} id={id}"),
            Op::FailPrepare { errno: 0 } => f.write_str("fail-prepare off"),
            Op::FailPrepare { errno } => write!(f, "fail-prepare errno={errno}"),
        }
    }
}

struct RegionFields<'a>(&'a Region);

impl fmt::Display for RegionFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(
            f,
            "as={} id={} gpa={} size={} hva={} flags={}",
            r.as_id(),
            r.id(),
            hex(r.guest_phys_addr),
            size(r.memory_size),
            hex(r.userspace_addr),
            flags(r.flags)
        )
    }
}

/// `0` or `0x...`.
pub fn hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

/// A size with the largest exact binary suffix, or hex.
pub fn size(v: u64) -> String {
    for (shift, suffix) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if v != 0 && v.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", v >> shift);
        }
    }
    hex(v)
}

/// Request flags as names (`0`, `dirty`, `readonly`, `dirty|readonly`) or hex.
pub fn flags(v: u32) -> String {
    match v {
        0 => "0".to_string(),
        KVM_MEM_LOG_DIRTY_PAGES => "dirty".to_string(),
        KVM_MEM_READONLY => "readonly".to_string(),
        3 => "dirty|readonly".to_string(),
        _ => format!("{v:#x}"),
    }
}
