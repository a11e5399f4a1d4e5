//! The scenario text format: programs as people write and read them.
//!
//! A scenario is a text file (conventionally `*.scenario`) with one operation per line. It is
//! how divergences are shown, how seeds and regression cases are written by hand, and the
//! lossless text form of any fuzz input (`memslot-diff fmt ARTIFACT` prints it).
//!
//! # Syntax
//!
//! ```text
//! # QEMU-style low RAM, then a lookup and an id query
//! set as=0 id=0 gpa=0 size=640K hva=0x7f0000000000 flags=0    # KVM_SET_USER_MEMORY_REGION
//! kset as=0 id=509 gpa=0xfeffd000 size=12K hva=0 flags=0      # in-kernel __kvm_set_memory_region
//! lookup as=0 gfn=0x9f
//! id as=1 id=3
//! fail-prepare errno=-12
//! fail-prepare off
//! ```
//!
//! * Blank lines are ignored; `#` starts a comment that runs to the end of the line.
//! * A line is an operation name followed by `key=value` fields separated by blanks, in any
//!   order. A field may not repeat; unknown fields are errors.
//! * Numbers are decimal (`4096`) or hexadecimal (`0x1000`); `_` may separate digits. The
//!   64-bit address fields (`gpa`, `size`, `hva`, `gfn`) also take a binary suffix `K`, `M`,
//!   `G` or `T` (×2^10, 2^20, 2^30, 2^40; lower case accepted): `size=2M`, `gpa=4G`.
//!   Values must fit their field; nothing wraps silently.
//!
//! # Operations
//!
//! | line | meaning |
//! |---|---|
//! | `set as=A id=I gpa=G size=S hva=H flags=F` | `KVM_SET_USER_MEMORY_REGION` (the ioctl refuses ids >= 509 with -EINVAL) |
//! | `kset ...` (same fields) | `__kvm_set_memory_region` called in-kernel (how x86 creates private slots 509..511) |
//! | `set2 ... gmem_offset=O gmem=FD` | `KVM_SET_USER_MEMORY_REGION2` (v6.8): `set`'s fields and the guest_memfd ones (default 0), on x86's default VM type, which has no private memory: `flags=guest_memfd` is refused there |
//! | `lookup as=A gfn=N` | `search_memslots` (`__gfn_to_memslot`) in address space A; updates the LRU hint |
//! | `id as=A id=I` | `id_to_memslot` in address space A |
//! | `fail-prepare errno=E` | from now on `kvm_arch_prepare_memory_region` returns E (a negative errno, decimal or a name such as `-ENOMEM`) |
//! | `fail-prepare off` | it succeeds again (same as `errno=0`) |
//!
//! Fields of `set`/`kset`: `id` is required (or `slot`, below), and so is `size` (`size=0`
//! deletes the slot); `as`, `gpa`, `hva` and `flags` default to 0. `as` and `id` are the high and
//! low 16 bits of the raw `u32 slot` field of `struct kvm_userspace_memory_region`; both may be
//! any 16-bit value (an out-of-range one is a request the kernel must refuse). Instead of
//! `as`/`id`, `slot=0x10003` gives the raw field. `flags` is a number or `|`-separated names
//! and numbers: `0`, `dirty` (KVM_MEM_LOG_DIRTY_PAGES), `readonly` (KVM_MEM_READONLY),
//! `dirty|readonly`, `guest_memfd` (KVM_MEM_GUEST_MEMFD, printed as `0x4`), `0x10000`. `lookup`
//! needs `gfn` and `id` needs `id`; `as` defaults to 0.
//!
//! # Canonical form
//!
//! Printing always produces one form: fields in the order above, `as`/`id` decimal, `gpa`,
//! `hva` and `gfn` in hex (`0` for zero), `size` with the largest exact binary suffix (`640K`,
//! `2M`, `3G`) or in hex when it is not a multiple of 1 KiB, `flags` as names when only known
//! bits are set and in hex otherwise, `errno` in decimal. Parsing the printed form gives back
//! the same operations (`parse(print(ops)) == ops`), for every field value.
//!
//! # Annotations
//!
//! A comment line of the form `# expect: ...` in a corpus file records the summary of a
//! replay (`memslot-diff replay --summary` prints it); `cargo test` fails when a replay no longer
//! produces it, so a change of behaviour shared by every implementation is noticed too.
//!
//! # Errors
//!
//! Malformed lines are reported as `FILE:LINE: message`, e.g.
//! `seeds/pc.scenario:12: unknown operation 'sett'` or
//! `seeds/pc.scenario:3: bad number 'zz' for gpa`.

mod fields;
mod print;

use std::fmt;

pub use fields::parse_u64;
use fields::{parse_errno, Fields};
pub use print::{flags, hex, print, print_at, size};

use crate::arch_profile::ArchProfile;
use crate::ops::Op;

/// A malformed scenario line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl ParseError {
    /// The error prefixed with the file name, as `FILE:LINE: message`.
    pub fn in_file(&self, file: &str) -> String {
        format!("{file}:{}: {}", self.line, self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse a whole scenario (its `arch` line is [`parse_arch`]'s).
pub fn parse(text: &str) -> Result<Vec<Op>, ParseError> {
    parse_arch(text)?;
    let mut ops = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if arch_line(line).is_some() {
            continue;
        }
        match parse_line(line) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => {}
            Err(message) => {
                return Err(ParseError {
                    line: n + 1,
                    message,
                })
            }
        }
    }
    Ok(ops)
}

/// The arch profile a scenario runs at: its `arch NAME` line (`arch x86-32k`), before the
/// first operation and at most once; x86-512 without one.
pub fn parse_arch(text: &str) -> Result<ArchProfile, ParseError> {
    let mut arch = None;
    let mut seen_op = false;
    for (n, line) in text.lines().enumerate() {
        let error = |message: String| ParseError {
            line: n + 1,
            message,
        };
        match arch_line(line) {
            Some(_) if seen_op => {
                return Err(error(
                    "'arch' comes before the first operation: it sets the limits of the whole run"
                        .to_string(),
                ))
            }
            Some(_) if arch.is_some() => return Err(error("a second 'arch' line".to_string())),
            Some(name) => arch = Some(ArchProfile::parse(name).map_err(error)?),
            None => seen_op |= matches!(parse_line(line), Ok(Some(_)) | Err(_)),
        }
    }
    Ok(arch.unwrap_or_default())
}

/// The profile name of an `arch NAME` line (`""` when missing), `None` for any other line.
fn arch_line(line: &str) -> Option<&str> {
    let code = line.split('#').next().unwrap_or("");
    let mut words = code.split_whitespace();
    (words.next() == Some("arch")).then(|| words.next().unwrap_or(""))
}

/// Parse one line: `Ok(None)` for blank and comment lines.
pub fn parse_line(line: &str) -> Result<Option<Op>, String> {
    let code = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut words = code.split_whitespace();
    let Some(name) = words.next() else {
        return Ok(None);
    };
    let mut fields = Fields::new(name);
    for word in words {
        if name == "fail-prepare" && word == "off" {
            fields.add("errno", "0")?;
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("expected key=value, found '{word}' in {name}"));
        };
        fields.add(key, value)?;
    }
    let op = match name {
        "set" | "kset" => {
            let region = fields.region()?;
            if name == "set" {
                Op::Set(region)
            } else {
                Op::KSet(region)
            }
        }
        "set2" => Op::Set2(fields.region2()?),
        "lookup" => {
            fields.allow(&["as", "gfn"])?;
            Op::Lookup {
                as_id: fields.u16("as")?.unwrap_or(0),
                gfn: fields.required_u64("gfn")?,
            }
        }
        "id" => {
            fields.allow(&["as", "id"])?;
            let id = fields.u16("id")?.ok_or("missing field 'id' for id")?;
            Op::Id {
                as_id: fields.u16("as")?.unwrap_or(0),
                id,
            }
        }
        "fail-prepare" => {
            fields.allow(&["errno"])?;
            let Some(value) = fields.get("errno") else {
                return Err("fail-prepare needs 'errno=E' or 'off'".to_string());
            };
            Op::FailPrepare {
                errno: parse_errno(value)?,
            }
        }
        _ => {
            return Err(format!(
                "unknown operation '{name}' (expected set, kset, set2, lookup, id or fail-prepare; \
                 'arch' only before the first operation)"
            ))
        }
    };
    Ok(Some(op))
}

/// The `# expect: ...` annotation of a scenario file, if it has one.
pub fn expectation(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("# expect:").map(str::trim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Region;

    #[test]
    fn parses_the_documented_example() {
        let text = "\
# comment
set as=0 id=3 gpa=0x100000 size=2M hva=0x7f0000000000 flags=dirty      # KVM_SET_USER_MEMORY_REGION

kset as=0 id=509 gpa=0xfeffd000 size=0x3000 hva=0 flags=0
lookup as=0 gfn=0x100
id as=1 id=3
fail-prepare errno=-12
fail-prepare off
set slot=0x10003 size=0 flags=dirty|readonly
";
        let ops = parse(text).unwrap();
        assert_eq!(ops.len(), 7);
        assert_eq!(
            ops[0],
            Op::Set(Region::new(0, 3, 0x100000, 2 << 20, 0x7f00_0000_0000, 1))
        );
        assert_eq!(
            ops[1],
            Op::KSet(Region::new(0, 509, 0xfeffd000, 0x3000, 0, 0))
        );
        assert_eq!(
            ops[2],
            Op::Lookup {
                as_id: 0,
                gfn: 0x100
            }
        );
        assert_eq!(ops[3], Op::Id { as_id: 1, id: 3 });
        assert_eq!(ops[4], Op::FailPrepare { errno: -12 });
        assert_eq!(ops[5], Op::FailPrepare { errno: 0 });
        assert_eq!(ops[6], Op::Set(Region::new(1, 3, 0, 0, 0, 3)));
        assert_eq!(parse(&print(&ops)).unwrap(), ops);
        assert_eq!(
            ops[0].to_string(),
            "set as=0 id=3 gpa=0x100000 size=2M hva=0x7f0000000000 flags=dirty"
        );
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e = parse("\n\nsett id=1 size=0\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown operation 'sett'"), "{e}");
        assert_eq!(
            e.in_file("a.scenario"),
            format!("a.scenario:3: {}", e.message)
        );
        let e = parse("set id=1 gpa=zz size=0").unwrap_err();
        assert!(e.message.starts_with("bad number 'zz' for gpa"), "{e}");
        for (line, needle) in [
            ("set id=1", "missing field 'size'"),
            ("set size=0", "missing field 'id'"),
            ("set id=1 size=0 size=1", "given twice"),
            ("set id=1 size=0 color=red", "unknown field 'color'"),
            ("set id=70000 size=0", "16 bits"),
            ("set id=1 size=0x1_0000_0000_0000_0000", "64 bits"),
            ("set id=1 size=16777216T", "64 bits"),
            ("set id=1 size=0 flags=dirty|bogus", "for flags"),
            ("set id=1 size=0 slot=3", "either slot"),
            ("set id=1 size", "expected key=value"),
            ("lookup as=0", "missing field 'gfn'"),
            ("lookup as=0 gfn=1 id=2", "unknown field 'id'"),
            ("fail-prepare", "needs"),
            ("fail-prepare errno=-EWHAT", "unknown errno"),
            ("id as=1K id=1", "bad number '1K' for as"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.message.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn the_arch_line_sets_the_profile_of_the_whole_run() {
        let text = "# today's x86\narch x86-32k   # 32,764 user slots\nset id=32763 size=4K\n";
        assert_eq!(parse_arch(text), Ok(ArchProfile::X86_32k));
        let ops = parse(text).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(parse_arch("set id=1 size=4K"), Ok(ArchProfile::X86_512));
        let printed = print_at(ArchProfile::X86_32k, &ops);
        assert_eq!(printed, format!("arch x86-32k\n{}", print(&ops)));
        assert_eq!(parse_arch(&printed), Ok(ArchProfile::X86_32k));
        assert_eq!(parse(&printed).unwrap(), ops);
        assert_eq!(print_at(ArchProfile::X86_512, &ops), print(&ops));
        for (text, line, needle) in [
            ("arch arm64\n", 1, "unknown arch profile 'arm64'"),
            ("arch\n", 1, "unknown arch profile ''"),
            (
                "set id=1 size=0\narch x86-32k\n",
                2,
                "before the first operation",
            ),
            ("arch x86-32k\narch x86-512\n", 2, "a second 'arch' line"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x1_000", true), Ok(0x1000));
        assert_eq!(parse_u64("640K", true), Ok(640 << 10));
        assert_eq!(parse_u64("4g", true), Ok(4 << 30));
        assert_eq!(parse_u64("18446744073709551615", false), Ok(u64::MAX));
        assert!(parse_u64("4K", false).is_err());
        assert!(parse_u64("-1", false).is_err());
        assert!(parse_u64("0x", false).is_err());
        assert_eq!(parse_errno("-ENOMEM"), Ok(-12));
        assert_eq!(parse_errno("-2147483648"), Ok(i32::MIN));
        assert_eq!(parse_errno("2147483647"), Ok(i32::MAX));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(size(640 << 10), "640K");
        assert_eq!(size(3 << 30), "3G");
        assert_eq!(size(0x3000), "12K");
        assert_eq!(size(0x1001), "0x1001");
        assert_eq!(size(0), "0");
        assert_eq!(flags(3), "dirty|readonly");
        assert_eq!(flags(0x10001), "0x10001");
        assert_eq!(Op::FailPrepare { errno: 0 }.to_string(), "fail-prepare off");
        assert_eq!(
            expectation("# a\n# expect: steps=3 ok=1\nset"),
            Some("steps=3 ok=1")
        );
    }
}
