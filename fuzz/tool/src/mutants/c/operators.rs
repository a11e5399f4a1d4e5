//! The mutation operators: every single-token change of a site.

use super::sites::is_warn;
use super::SiteKind;

/// Every single-token change of a site: `(operator, mutated text)`.
pub(super) fn variants(text: &str, masked: &str, kind: SiteKind) -> Vec<(&'static str, String)> {
    let b = masked.as_bytes();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut replace = |operator: &'static str, at: usize, len: usize, with: &str| {
        let mut s = String::with_capacity(text.len() + 4);
        s.push_str(&text[..at]);
        s.push_str(with);
        s.push_str(&text[at + len..]);
        out.push((operator, s));
    };
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let prev = if i > 0 { b[i - 1] } else { b' ' };
        match (b[i], next) {
            (b'&', Some(b'&')) => {
                replace("logical", i, 2, "||");
                i += 2;
                continue;
            }
            (b'|', Some(b'|')) => {
                replace("logical", i, 2, "&&");
                i += 2;
                continue;
            }
            (b'+', Some(b'+')) => {
                replace("increment", i, 2, "--");
                i += 2;
                continue;
            }
            (b'-', Some(b'-')) => {
                replace("increment", i, 2, "++");
                i += 2;
                continue;
            }
            (b'=', Some(b'=')) => {
                replace("relational", i, 2, "!=");
                i += 2;
                continue;
            }
            (b'!', Some(b'=')) => {
                replace("relational", i, 2, "==");
                i += 2;
                continue;
            }
            (b'!', _) => {
                replace("negate", i, 1, "");
            }
            (b'<' | b'>', Some(c)) if c == b[i] || prev == b'-' => {
                // `<<`, `>>`, `->`: not comparisons.
                i += 2;
                continue;
            }
            (b'<' | b'>', Some(b'=')) => {
                replace("relational", i, 2, if b[i] == b'<' { "<" } else { ">" });
                i += 2;
                continue;
            }
            (b'<' | b'>', _) => {
                replace("relational", i, 1, if b[i] == b'<' { "<=" } else { ">=" });
            }
            (b'+' | b'-', Some(b' ')) if prev == b' ' => {
                // A binary `a + b` (kernel style spaces it): `+ 1`/`- 1` dropped, else swapped.
                let rest = &masked[i + 2..];
                let one = rest.starts_with('1')
                    && !rest[1..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                if one {
                    replace("off-by-one", i - 1, 4, "");
                } else {
                    replace("arithmetic", i, 1, if b[i] == b'+' { "-" } else { "+" });
                }
            }
            _ => {}
        }
        i += 1;
    }
    match kind {
        SiteKind::Expression { condition: true } => {
            out.push(("negate", format!("!({text})")));
        }
        // A `WARN_ON(...);` statement only reports, and a WARN of the unmutated port is a
        // finding by itself: dropping one changes nothing a correct port does.
        SiteKind::Statement if !is_warn(text) => out.push(("drop", String::new())),
        SiteKind::Statement => {}
        SiteKind::Expression { condition: false } => {}
    }
    out
}
