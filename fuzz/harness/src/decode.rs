//! The byte form of a program: how fuzz inputs decode into operations, and the encoder that
//! turns any program back into bytes.
//!
//! An input is a sequence of operations, each starting with a tag byte:
//!
//! | tag | operation | then (little endian) |
//! |---|---|---|
//! | `0x00` | `set` | `slot: u32, flags: u32, gpa: u64, size: u64, hva: u64` (32 bytes) |
//! | `0x01` | `kset` | same 32 bytes |
//! | `0x02` | `lookup` | `as: u16, gfn: u64` |
//! | `0x03` | `id` | `as: u16, id: u16` |
//! | `0x04` | `fail-prepare` | `errno: i32` (skipped where the decoding does not allow it) |
//! | `0x05..=0xfc` | an [`Intent`] chosen by the target's weights | the intent's choices, byte by byte |
//! | `0xfd` | `set2` | `set`'s 32 bytes, then `guest_memfd_offset: u64, guest_memfd: u32` |
//!
//! `set2` came after the intents: its tag is taken from their top, where the three tags it
//! reserves (0xfd..=0xff) chose the last intent, and every other tag picks what it picked
//! before. The verbatim tags take every field verbatim; they are what [`encode`] emits, so
//! `decode(encode(ops)) == ops` for every program the decoding accepts (with every target:
//! the verbatim tags mean the same everywhere). Intents are resolved against a shadow oracle
//! while decoding, so decoding always yields concrete operations. Decoding never fails: an
//! input that ends inside a verbatim operation ends the program there (see
//! [`Program::truncated_at`]); an intent that runs out of bytes reads zeros.

use arbitrary::Unstructured;

use crate::generate::{Generator, Source, Weights};
use crate::ops::{Op, Region, Region2};

pub const TAG_SET: u8 = 0x00;
pub const TAG_KSET: u8 = 0x01;
pub const TAG_LOOKUP: u8 = 0x02;
pub const TAG_ID: u8 = 0x03;
pub const TAG_FAIL_PREPARE: u8 = 0x04;
/// Tags from here on are intents.
pub const FIRST_INTENT_TAG: u8 = 0x05;
/// `set2`: above the intents (0xfe and 0xff are kept for later operations, and skipped).
pub const TAG_SET2: u8 = 0xfd;
/// The intents' tags are `FIRST_INTENT_TAG..TAG_SET2`, mapped onto the weights as when they
/// ran to 0xff: this many tags.
const INTENT_TAG_SPAN: u32 = u8::MAX as u32 - FIRST_INTENT_TAG as u32 + 1;

/// How a target decodes its input.
#[derive(Clone, Debug)]
pub struct Config {
    pub weights: Weights,
    /// Whether `fail-prepare` (tag 0x04) is decoded (see `Lockstep::allows_fail_prepare`: the
    /// standard set and the zoo's prepare-failure bug decode it, other zoo bugs skip it).
    pub allow_fail_prepare: bool,
    /// Programs end after this many operations.
    pub max_ops: usize,
    /// The limits of the lockstep the inputs run on (which ids the intents pick).
    pub arch: crate::ArchProfile,
}

/// Default cap on operations per input.
pub const MAX_OPS: usize = 2048;

/// A decoded input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    pub ops: Vec<Op>,
    /// Byte offset of a verbatim operation the input ends inside of (ignored).
    pub truncated_at: Option<usize>,
    /// Number of `fail-prepare` operations the decoding skipped.
    pub skipped_fail_prepare: usize,
}

struct Bytes<'a, 'b>(&'b mut Unstructured<'a>);

impl Source for Bytes<'_, '_> {
    fn byte(&mut self) -> u8 {
        self.0.bytes(1).map_or(0, |b| b[0])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn take<const N: usize>(u: &mut Unstructured<'_>) -> Option<[u8; N]> {
    u.bytes(N).ok().map(|b| b.try_into().expect("N bytes"))
}

fn region(u: &mut Unstructured<'_>) -> Option<Region> {
    let b: [u8; 32] = take(u)?;
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Some(Region {
        slot: u32_at(0),
        flags: u32_at(4),
        guest_phys_addr: u64_at(8),
        memory_size: u64_at(16),
        userspace_addr: u64_at(24),
    })
}

/// A verbatim operation after its tag; `None` if the input ends inside it.
fn verbatim(tag: u8, u: &mut Unstructured<'_>) -> Option<Op> {
    Some(match tag {
        TAG_SET => Op::Set(region(u)?),
        TAG_KSET => Op::KSet(region(u)?),
        TAG_SET2 => {
            let region = region(u)?;
            let b: [u8; 12] = take(u)?;
            Op::Set2(Region2 {
                region,
                guest_memfd_offset: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
                guest_memfd: u32::from_le_bytes(b[8..].try_into().expect("4 bytes")),
            })
        }
        TAG_LOOKUP => {
            let b: [u8; 10] = take(u)?;
            Op::Lookup {
                as_id: u16::from_le_bytes([b[0], b[1]]),
                gfn: u64::from_le_bytes(b[2..10].try_into().expect("8 bytes")),
            }
        }
        TAG_ID => {
            let b: [u8; 4] = take(u)?;
            Op::Id {
                as_id: u16::from_le_bytes([b[0], b[1]]),
                id: u16::from_le_bytes([b[2], b[3]]),
            }
        }
        _ => Op::FailPrepare {
            errno: i32::from_le_bytes(take(u)?),
        },
    })
}

/// Decode fuzz input bytes into a program.
pub fn decode(config: &Config, data: &[u8]) -> Program {
    let mut u = Unstructured::new(data);
    let mut gen = Generator::with_arch(config.max_ops, config.arch);
    let mut program = Program::default();
    let total = config.weights.total();
    while !u.is_empty() && !gen.is_full() {
        let offset = data.len() - u.len();
        let tag = Bytes(&mut u).byte();
        if tag > TAG_SET2 {
            continue;
        }
        if tag < FIRST_INTENT_TAG || tag == TAG_SET2 {
            match verbatim(tag, &mut u) {
                Some(Op::FailPrepare { .. }) if !config.allow_fail_prepare => {
                    program.skipped_fail_prepare += 1
                }
                Some(op) => gen.emit(op),
                None => {
                    program.truncated_at = Some(offset);
                    break;
                }
            }
        } else {
            let n = u32::from(tag - FIRST_INTENT_TAG) * total / INTENT_TAG_SPAN;
            gen.intent(config.weights.pick(n), &mut Bytes(&mut u));
        }
    }
    program.ops = gen.into_ops();
    program
}

/// The byte form of a program: every operation verbatim.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ops.len() * 33);
    for op in ops {
        match op {
            Op::Set(r) | Op::KSet(r) => {
                out.push(if matches!(op, Op::Set(_)) {
                    TAG_SET
                } else {
                    TAG_KSET
                });
                encode_region(&mut out, r);
            }
            Op::Set2(r) => {
                out.push(TAG_SET2);
                encode_region(&mut out, &r.region);
                out.extend_from_slice(&r.guest_memfd_offset.to_le_bytes());
                out.extend_from_slice(&r.guest_memfd.to_le_bytes());
            }
            Op::Lookup { as_id, gfn } => {
                out.push(TAG_LOOKUP);
                out.extend_from_slice(&as_id.to_le_bytes());
                out.extend_from_slice(&gfn.to_le_bytes());
            }
            Op::Id { as_id, id } => {
                out.push(TAG_ID);
                out.extend_from_slice(&as_id.to_le_bytes());
                out.extend_from_slice(&id.to_le_bytes());
            }
            Op::FailPrepare { errno } => {
                out.push(TAG_FAIL_PREPARE);
                out.extend_from_slice(&errno.to_le_bytes());
            }
        }
    }
    out
}

/// The 32 bytes [`region`] reads.
fn encode_region(out: &mut Vec<u8>, r: &Region) {
    out.extend_from_slice(&r.slot.to_le_bytes());
    out.extend_from_slice(&r.flags.to_le_bytes());
    out.extend_from_slice(&r.guest_phys_addr.to_le_bytes());
    out.extend_from_slice(&r.memory_size.to_le_bytes());
    out.extend_from_slice(&r.userspace_addr.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_fail_prepare: bool) -> Config {
        Config {
            weights: Weights::differential(),
            allow_fail_prepare,
            max_ops: MAX_OPS,
            arch: crate::ArchProfile::X86_512,
        }
    }

    #[test]
    fn verbatim_round_trip() {
        let ops = vec![
            Op::Set(Region::new(1, 2, 0x1000, 0x2000, 0x3000, 1)),
            Op::KSet(Region {
                slot: u32::MAX,
                flags: u32::MAX,
                guest_phys_addr: u64::MAX,
                memory_size: 7,
                userspace_addr: 9,
            }),
            Op::Lookup {
                as_id: 0xffff,
                gfn: u64::MAX,
            },
            Op::Id { as_id: 1, id: 511 },
            Op::Set2(Region2 {
                region: Region::new(0, 3, 0x4000, 0x1000, 0x5000, 4),
                guest_memfd_offset: u64::MAX,
                guest_memfd: 7,
            }),
            Op::FailPrepare { errno: -12 },
        ];
        let bytes = encode(&ops);
        assert_eq!(bytes.len(), 33 * 2 + 11 + 5 + 45 + 5);
        assert_eq!(decode(&config(true), &bytes).ops, ops);
        let without = decode(&config(false), &bytes);
        assert_eq!(without.ops, ops[..5]);
        assert_eq!(without.skipped_fail_prepare, 1);
    }

    #[test]
    fn truncated_input_ends_the_program() {
        let mut bytes = encode(&[Op::Id { as_id: 0, id: 1 }, Op::Set(Region::default())]);
        bytes.truncate(bytes.len() - 3);
        let p = decode(&config(false), &bytes);
        assert_eq!(p.ops, vec![Op::Id { as_id: 0, id: 1 }]);
        assert_eq!(p.truncated_at, Some(5));
    }

    #[test]
    fn any_bytes_decode() {
        let mut data = Vec::new();
        for i in 0..5000u32 {
            data.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
        }
        for len in [0, 1, 2, 7, 100, 5000] {
            let p = decode(&config(false), &data[..len]);
            assert!(p.ops.len() <= MAX_OPS);
            assert!(len < 100 || !p.ops.is_empty());
        }
    }
}
