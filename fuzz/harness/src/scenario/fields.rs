//! The `key=value` fields of a scenario line and the values they hold: numbers with binary
//! suffixes, flag names, errno names.

use crate::ops::{
    errno_value, Region, Region2, KVM_MEM_GUEST_MEMFD, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY,
};

/// The `key=value` fields of one line, checked as they are added.
pub(super) struct Fields<'a> {
    op: &'a str,
    list: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(op: &'a str) -> Self {
        Fields {
            op,
            list: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, key: &'a str, value: &'a str) -> Result<(), String> {
        if self.get(key).is_some() {
            return Err(format!("field '{key}' given twice"));
        }
        if value.is_empty() {
            return Err(format!("empty value for {key}"));
        }
        self.list.push((key, value));
        Ok(())
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        self.list.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    pub(super) fn allow(&self, keys: &[&str]) -> Result<(), String> {
        match self.list.iter().find(|(k, _)| !keys.contains(k)) {
            Some((k, _)) => Err(format!(
                "unknown field '{k}' for {} (expected {})",
                self.op,
                keys.join(", ")
            )),
            None => Ok(()),
        }
    }

    pub(super) fn number(&self, key: &str, suffix_ok: bool) -> Result<Option<u64>, String> {
        self.get(key)
            .map(|v| parse_u64(v, suffix_ok).map_err(|why| bad(v, key, why)))
            .transpose()
    }

    pub(super) fn required_u64(&self, key: &str) -> Result<u64, String> {
        self.number(key, true)?
            .ok_or_else(|| format!("missing field '{key}' for {}", self.op))
    }

    pub(super) fn u16(&self, key: &str) -> Result<Option<u16>, String> {
        match self.number(key, false)? {
            Some(v) => u16::try_from(v)
                .map(Some)
                .map_err(|_| bad(self.get(key).unwrap_or(""), key, "does not fit in 16 bits")),
            None => Ok(None),
        }
    }

    pub(super) fn region(&self) -> Result<Region, String> {
        self.allow(&REGION_FIELDS)?;
        self.region_fields()
    }

    /// `set2`'s fields: a region's and `gmem_offset=` (bytes) and `gmem=` (the fd), both 0 by
    /// default.
    pub(super) fn region2(&self) -> Result<Region2, String> {
        let mut keys = REGION_FIELDS.to_vec();
        keys.extend(["gmem_offset", "gmem"]);
        self.allow(&keys)?;
        let guest_memfd = match self.number("gmem", false)? {
            Some(fd) => u32::try_from(fd).map_err(|_| {
                bad(
                    self.get("gmem").unwrap_or(""),
                    "gmem",
                    "does not fit in 32 bits",
                )
            })?,
            None => 0,
        };
        Ok(Region2 {
            region: self.region_fields()?,
            guest_memfd_offset: self.number("gmem_offset", true)?.unwrap_or(0),
            guest_memfd,
        })
    }

    pub(super) fn region_fields(&self) -> Result<Region, String> {
        let slot = match (
            self.get("slot"),
            self.get("as").is_some() || self.get("id").is_some(),
        ) {
            (Some(v), false) => u32::try_from(self.number("slot", false)?.unwrap_or(0))
                .map_err(|_| bad(v, "slot", "does not fit in 32 bits"))?,
            (Some(_), true) => return Err("give either slot= or as=/id=, not both".to_string()),
            (None, _) => {
                let id = self
                    .u16("id")?
                    .ok_or_else(|| format!("missing field 'id' for {}", self.op))?;
                (u32::from(self.u16("as")?.unwrap_or(0)) << 16) | u32::from(id)
            }
        };
        let flags = match self.get("flags") {
            Some(v) => parse_flags(v).map_err(|why| bad(v, "flags", why))?,
            None => 0,
        };
        Ok(Region {
            slot,
            flags,
            guest_phys_addr: self.number("gpa", true)?.unwrap_or(0),
            memory_size: self.required_u64("size")?,
            userspace_addr: self.number("hva", true)?.unwrap_or(0),
        })
    }
}

/// The fields of `set` and `kset`.
pub(super) const REGION_FIELDS: [&str; 7] = ["as", "id", "slot", "gpa", "size", "hva", "flags"];

pub(super) fn bad(value: &str, key: &str, why: &str) -> String {
    format!("bad number '{value}' for {key}: {why}")
}

/// A decimal or `0x` hex number, `_` separators allowed, with an optional K/M/G/T suffix.
pub fn parse_u64(text: &str, suffix_ok: bool) -> Result<u64, &'static str> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') if suffix_ok => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') if suffix_ok => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') if suffix_ok => (&text[..text.len() - 1], 30),
        Some(b'T' | b't') if suffix_ok => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let (digits, radix) = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => (hex, 16),
        None => (digits, 10),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || digits.starts_with('_') {
        return Err("expected a decimal or 0x-hex number");
    }
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return Err(if suffix_ok {
            "expected a decimal or 0x-hex number, optionally with a K/M/G/T suffix"
        } else {
            "expected a decimal or 0x-hex number"
        });
    }
    let v = u64::from_str_radix(&clean, radix).map_err(|_| "does not fit in 64 bits")?;
    v.checked_mul(1 << shift).ok_or("does not fit in 64 bits")
}

pub(super) fn parse_flags(text: &str) -> Result<u32, &'static str> {
    let mut flags = 0u32;
    for part in text.split('|') {
        flags |= match part {
            "dirty" => KVM_MEM_LOG_DIRTY_PAGES,
            "readonly" => KVM_MEM_READONLY,
            "guest_memfd" => KVM_MEM_GUEST_MEMFD,
            _ => {
                let v = parse_u64(part, false)
                    .map_err(|_| "expected a number or dirty, readonly, joined with |")?;
                u32::try_from(v).map_err(|_| "does not fit in 32 bits")?
            }
        };
    }
    Ok(flags)
}

pub(super) fn parse_errno(text: &str) -> Result<i32, String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = if body.starts_with('E') {
        errno_value(body).ok_or_else(|| format!("unknown errno name '{body}'"))?
    } else {
        let v = parse_u64(body, false).map_err(|why| bad(text, "errno", why))?;
        // -2147483648 is the one value whose magnitude does not fit in i32.
        if negative && v == 1 << 31 {
            return Ok(i32::MIN);
        }
        i32::try_from(v).map_err(|_| bad(text, "errno", "does not fit in 32 bits"))?
    };
    Ok(if negative { -magnitude } else { magnitude })
}
