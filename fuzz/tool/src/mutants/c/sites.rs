//! Finding the mutation sites of a port: conditions, `for` steps, initializers, `return`
//! values and expression statements inside function bodies.

use super::scan::{is_ident, matching, skip_space, trimmed, word_at, KEYWORDS_NOT_STATEMENTS};
use super::{Site, SiteKind};

/// Every function body's sites, in order.
pub(super) fn sites(code: &str) -> Vec<Site> {
    let b = code.as_bytes();
    let mut sites = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' if depth == 0 => {
                // A function body follows `name(...)`.
                let mut j = i;
                while j > 0 && b[j - 1].is_ascii_whitespace() {
                    j -= 1;
                }
                let function = (j > 0 && b[j - 1] == b')')
                    .then(|| {
                        let mut k = j - 1;
                        let mut d = 0;
                        loop {
                            match b[k] {
                                b')' => d += 1,
                                b'(' => {
                                    d -= 1;
                                    if d == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            if k == 0 {
                                return None;
                            }
                            k -= 1;
                        }
                        let mut e = k;
                        while e > 0 && b[e - 1].is_ascii_whitespace() {
                            e -= 1;
                        }
                        let mut s = e;
                        while s > 0 && is_ident(b[s - 1]) {
                            s -= 1;
                        }
                        (s < e).then(|| code[s..e].to_string())
                    })
                    .flatten();
                let end = body_end(b, i);
                if let Some(function) = function {
                    body_sites(code, i + 1, end, &function, &mut sites);
                }
                i = end + 1;
                continue;
            }
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    sites
}

pub(super) fn body_end(b: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    b.len() - 1
}

/// The sites of one function body `[start, end)`.
pub(super) fn body_sites(
    code: &str,
    start: usize,
    end: usize,
    function: &str,
    sites: &mut Vec<Site>,
) {
    let b = code.as_bytes();
    let push = |sites: &mut Vec<Site>, s: usize, e: usize, kind: SiteKind| {
        let (s, e) = trimmed(b, s, e);
        if s < e {
            sites.push(Site {
                start: s,
                end: e,
                kind,
                function: function.to_string(),
            });
        }
    };
    let mut i = start;
    while i < end {
        i = skip_space(b, i);
        if i >= end {
            break;
        }
        match b[i] {
            b'{' | b'}' | b';' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let word = word_at(b, i);
        if matches!(word, "if" | "while" | "for" | "switch") {
            let open = skip_space(b, i + word.len());
            let Some(close) = (b.get(open) == Some(&b'('))
                .then(|| matching(b, open))
                .flatten()
            else {
                i += word.len();
                continue;
            };
            match word {
                "if" | "while" => push(
                    sites,
                    open + 1,
                    close,
                    SiteKind::Expression { condition: true },
                ),
                "for" => {
                    let parts = split_top(b, open + 1, close, b';');
                    if let [_, (cs, ce), (ss, se)] = parts[..] {
                        push(sites, cs, ce, SiteKind::Expression { condition: true });
                        push(sites, ss, se, SiteKind::Expression { condition: false });
                    }
                }
                _ => {}
            }
            i = close + 1;
            continue;
        }
        if word == "else" || word == "do" {
            i += word.len();
            continue;
        }
        // A simple statement: up to `;` at paren depth 0, with no brace before it.
        let mut j = i;
        let mut depth = 0;
        let mut simple = true;
        while j < end {
            match b[j] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b'{' | b'}' if depth == 0 => {
                    simple = false;
                    break;
                }
                b';' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if !simple || j >= end {
            // A macro loop header (`kvm_for_each_memslot(...) {`) or an initializer list.
            i = j + 1;
            continue;
        }
        let text = &code[i..j];
        if let Some(colon) = label_end(text) {
            i += colon + 1;
            continue;
        }
        if word == "return" {
            push(
                sites,
                i + word.len(),
                j,
                SiteKind::Expression { condition: false },
            );
        } else if KEYWORDS_NOT_STATEMENTS.contains(&word) {
        } else if let Some(eq) = declaration_initializer(text) {
            push(
                sites,
                i + eq + 1,
                j,
                SiteKind::Expression { condition: false },
            );
        } else if !is_declaration(text) && !text.trim_start().starts_with("(void)") {
            // `(void)x;` only silences a warning.
            push(sites, i, j + 1, SiteKind::Statement);
        }
        i = j + 1;
    }
}

/// Ranges of `[start, end)` split at `sep` outside parentheses.
pub(super) fn split_top(b: &[u8], start: usize, end: usize, sep: u8) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut from = start;
    for (i, &c) in b.iter().enumerate().take(end).skip(start) {
        match c {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if c == sep && depth == 0 => {
                parts.push((from, i));
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push((from, end));
    parts
}

/// `out:` or `case X:` at the start of a statement: the colon's offset.
pub(super) fn label_end(text: &str) -> Option<usize> {
    let t = text.trim_start();
    let lead = text.len() - t.len();
    let word_len = t.bytes().take_while(|&c| is_ident(c)).count();
    let rest = t[word_len..].trim_start();
    (word_len > 0 && rest.starts_with(':') && !rest.starts_with("::"))
        .then(|| lead + word_len + (t[word_len..].len() - rest.len()))
}

/// A declaration begins with a type: two identifiers in a row (`int i`, `struct kvm *kvm`,
/// `unsigned long n`), with `*`s between them allowed.
pub(super) fn is_declaration(text: &str) -> bool {
    let t = text.trim_start();
    let mut words = 0;
    let mut chars = t.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '*') {
            chars.next();
        }
        let word: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect();
        if word.is_empty() {
            return false;
        }
        words += 1;
        if words >= 2 {
            return true;
        }
        if !chars.peek().is_some_and(|c| c.is_whitespace() || *c == '*') {
            return false;
        }
    }
}

/// The offset of a declaration's top-level `=`, if it has an initializer.
pub(super) fn declaration_initializer(text: &str) -> Option<usize> {
    if !is_declaration(text) {
        return None;
    }
    let b = text.as_bytes();
    let mut depth = 0;
    for i in 0..b.len() {
        match b[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'=' if depth == 0
                && b.get(i + 1) != Some(&b'=')
                && !matches!(b.get(i.wrapping_sub(1)), Some(b'!' | b'<' | b'>' | b'=')) =>
            {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

pub(super) fn is_warn(statement: &str) -> bool {
    let t = statement.trim_start();
    t.starts_with("WARN") && t.trim_end().ends_with(");")
}
