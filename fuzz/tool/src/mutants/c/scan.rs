//! Reading a C port as text: the code without comments, literals and inactive preprocessor
//! branches, and the small scanners the site finder works with.

use std::collections::HashSet;

/// The source with comments, string and character literals, preprocessor lines and the
/// code of inactive preprocessor branches blanked out (same length, line breaks kept).
pub(super) fn code_only(source: &str, defines: &HashSet<String>) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, i: usize| {
        if out[i] != b'\n' {
            out[i] = b' ';
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |e| i + 2 + e + 2);
                (i..end).for_each(|j| blank(&mut out, j));
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = source[i..].find('\n').map_or(bytes.len(), |e| i + e);
                (i..end).for_each(|j| blank(&mut out, j));
                i = end;
            }
            b'"' | b'\'' => {
                let quote = bytes[i];
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != quote {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(bytes.len());
                (i..end).for_each(|k| blank(&mut out, k));
                i = end;
            }
            _ => i += 1,
        }
    }
    // Preprocessor lines (with their continuations) and inactive branches. A branch is
    // (active, known): `#if EXPR` is not evaluated, so neither of its branches is mutated.
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut continued = false;
    let text = String::from_utf8(out).expect("only ASCII bytes were replaced");
    let mut result = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let directive = continued || trimmed.starts_with('#');
        if directive && !continued {
            let mut words = trimmed[1..].split_whitespace();
            let name = words.next().unwrap_or("");
            let arg = words.next().unwrap_or("");
            match name {
                "ifdef" => stack.push((defines.contains(arg), true)),
                "ifndef" => stack.push((!defines.contains(arg), true)),
                "if" => stack.push((false, false)),
                "else" | "elif" => {
                    if let Some(top) = stack.last_mut() {
                        *top = if name == "else" && top.1 {
                            (!top.0, true)
                        } else {
                            (false, false)
                        };
                    }
                }
                "endif" => {
                    stack.pop();
                }
                _ => {}
            }
        }
        continued = directive && line.trim_end().ends_with('\\');
        let active = stack.iter().all(|(a, _)| *a);
        if directive || !active {
            result.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            result.push_str(line);
        }
    }
    result
}

pub(super) const KEYWORDS_NOT_STATEMENTS: [&str; 9] = [
    "return", "break", "continue", "goto", "case", "default", "switch", "do", "else",
];

pub(super) fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(super) fn word_at(code: &[u8], i: usize) -> &str {
    let mut j = i;
    while j < code.len() && is_ident(code[j]) {
        j += 1;
    }
    std::str::from_utf8(&code[i..j]).unwrap_or("")
}

/// The index of the parenthesis closing the one at `open`.
pub(super) fn matching(code: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

pub(super) fn skip_space(code: &[u8], mut i: usize) -> usize {
    while i < code.len() && code[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Trim a range to its non-blank part.
pub(super) fn trimmed(code: &[u8], start: usize, end: usize) -> (usize, usize) {
    let mut s = start;
    let mut e = end;
    while s < e && code[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && code[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    (s, e)
}
