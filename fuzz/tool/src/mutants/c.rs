//! A small mutator for the C ports, and the mutant schemata it builds them from.
//!
//! It reads a port's source as text and finds mutation sites inside function bodies: the
//! conditions of `if`, `while` and `for`, a `for`'s step, the initializers of declarations,
//! `return` values and expression statements. Each operator changes one token (or drops a
//! statement, or negates a condition). Only code the port's standard state compiles is
//! mutated: `#ifdef`/`#ifndef`/`#else` blocks are evaluated with that state's defines, and
//! an `#if EXPR` block is left alone.
//!
//! The schemata compile every mutant at once: a site becomes
//! `(__memslot_mutant_is(7) ? (mutated) : ... : (original))` (a statement:
//! `{ if (...) { mutated } else if (!__memslot_mutant_is(9)) { original } }`), and the
//! process environment's `MEMSLOT_MUTANT=<id>` picks one. The mutated copies are written on
//! the original's first line, so line numbers (and so WARN sites) do not move.

use std::collections::HashSet;

/// One mutant of a port source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutant {
    /// Unique over one run, in file and position order.
    pub id: usize,
    /// Relative to `reference/c/`, e.g. `post15/kvm_main.c`.
    pub file: String,
    pub function: String,
    /// 1-based line of the site's first character.
    pub line: usize,
    /// `relational`, `logical`, `arithmetic`, `off-by-one`, `increment`, `negate`, `drop`.
    pub operator: &'static str,
    /// The site's text (whitespace runs folded to one space).
    pub original: String,
    pub replacement: String,
    /// 1 for the first mutant with this file, function, operator and texts, 2 for the next...
    pub occurrence: usize,
}

impl Mutant {
    /// What names the mutant across edits elsewhere in the file (no ids, no lines): the
    /// key of the equivalent-mutants list.
    pub fn key(&self) -> String {
        let mut key = format!(
            "{} {}: {}: `{}` -> `{}`",
            self.file, self.function, self.operator, self.original, self.replacement
        );
        if self.occurrence > 1 {
            key += &format!(" #{}", self.occurrence);
        }
        key
    }
}

/// A source with its mutants and their schemata.
pub struct Mutated {
    pub mutants: Vec<Mutant>,
    /// The source with every mutant compiled in behind `__memslot_mutant_is`.
    pub schemata: String,
}

/// What a site is, for the schemata.
#[derive(Clone, Copy, PartialEq)]
enum SiteKind {
    /// An expression: a condition, an initializer, a return value, a `for` step.
    Expression { condition: bool },
    /// A whole expression statement, up to and including its `;`.
    Statement,
}

struct Site {
    start: usize,
    end: usize,
    kind: SiteKind,
    function: String,
}

/// The helper the schemata call; it goes in front of the header's first line.
pub const HELPER: &str = "extern char *getenv(const char *); extern long strtol(const char *, char **, int); \
static inline __attribute__((unused)) int __memslot_mutant_is(int n) { static int id = -2; \
if (id == -2) { const char *s = getenv(\"MEMSLOT_MUTANT\"); id = s && *s ? (int)strtol(s, 0, 10) : -1; } \
return id == n; } ";

/// Mutate the functions of `source` (the file `file`) that `in_scope` accepts, numbering
/// mutants from `first_id`; `defines` are the macros the standard state and the headers
/// define.
pub fn mutate(
    source: &str,
    file: &str,
    defines: &HashSet<String>,
    in_scope: &dyn Fn(&str) -> bool,
    first_id: usize,
) -> Mutated {
    let code = code_only(source, defines);
    let mut sites = sites(&code);
    sites.retain(|site| in_scope(&site.function));
    let mut mutants: Vec<Mutant> = Vec::new();
    let mut out = String::with_capacity(source.len() * 2);
    let mut at = 0;
    for site in &sites {
        let text = &source[site.start..site.end];
        let masked = &code[site.start..site.end];
        if fold(text) != fold(masked) {
            // A comment or a literal inside: its one-line copies could not be trusted.
            continue;
        }
        let variants = variants(text, masked, site.kind);
        if variants.is_empty() {
            continue;
        }
        let line = source[..site.start].matches('\n').count() + 1;
        let mut ids = Vec::new();
        for (operator, replacement) in variants {
            let id = first_id + mutants.len();
            let original = fold(text);
            let replacement_folded = fold(&replacement);
            let occurrence = 1 + mutants
                .iter()
                .filter(|m| {
                    m.function == site.function
                        && m.operator == operator
                        && m.original == original
                        && m.replacement == replacement_folded
                })
                .count();
            mutants.push(Mutant {
                id,
                file: file.to_string(),
                function: site.function.clone(),
                line,
                operator,
                original,
                replacement: replacement_folded,
                occurrence,
            });
            ids.push((id, operator, replacement));
        }
        out.push_str(&source[at..site.start]);
        out.push_str(&schema(text, site.kind, &ids));
        at = site.end;
    }
    out.push_str(&source[at..]);
    Mutated {
        mutants,
        schemata: out,
    }
}

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The site's text replaced by its mutants, on one line, followed by the original (whose
/// line breaks stay where they were).
fn schema(original: &str, kind: SiteKind, ids: &[(usize, &'static str, String)]) -> String {
    let one_line = |s: &str| s.replace('\n', " ");
    match kind {
        SiteKind::Expression { .. } => {
            let mut s = String::from("(");
            for (id, _, replacement) in ids {
                s += &format!("__memslot_mutant_is({id}) ? ({}) : ", one_line(replacement));
            }
            s + "(" + original + "))"
        }
        SiteKind::Statement => {
            let mut s = String::from("{ ");
            let mut dropped = None;
            for (id, operator, replacement) in ids {
                if *operator == "drop" {
                    dropped = Some(*id);
                    continue;
                }
                s += &format!(
                    "if (__memslot_mutant_is({id})) {{ {} }} else ",
                    one_line(replacement)
                );
            }
            match dropped {
                Some(id) => s + &format!("if (!__memslot_mutant_is({id})) {{ {original} }} }}"),
                None => s + &format!("{{ {original} }} }}"),
            }
        }
    }
}

/// The source with comments, string and character literals, preprocessor lines and the
/// code of inactive preprocessor branches blanked out (same length, line breaks kept).
fn code_only(source: &str, defines: &HashSet<String>) -> String {
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

const KEYWORDS_NOT_STATEMENTS: [&str; 9] = [
    "return", "break", "continue", "goto", "case", "default", "switch", "do", "else",
];

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn word_at(code: &[u8], i: usize) -> &str {
    let mut j = i;
    while j < code.len() && is_ident(code[j]) {
        j += 1;
    }
    std::str::from_utf8(&code[i..j]).unwrap_or("")
}

/// The index of the parenthesis closing the one at `open`.
fn matching(code: &[u8], open: usize) -> Option<usize> {
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

fn skip_space(code: &[u8], mut i: usize) -> usize {
    while i < code.len() && code[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Trim a range to its non-blank part.
fn trimmed(code: &[u8], start: usize, end: usize) -> (usize, usize) {
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

/// Every function body's sites, in order.
fn sites(code: &str) -> Vec<Site> {
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

fn body_end(b: &[u8], open: usize) -> usize {
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
fn body_sites(code: &str, start: usize, end: usize, function: &str, sites: &mut Vec<Site>) {
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
fn split_top(b: &[u8], start: usize, end: usize, sep: u8) -> Vec<(usize, usize)> {
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
fn label_end(text: &str) -> Option<usize> {
    let t = text.trim_start();
    let lead = text.len() - t.len();
    let word_len = t.bytes().take_while(|&c| is_ident(c)).count();
    let rest = t[word_len..].trim_start();
    (word_len > 0 && rest.starts_with(':') && !rest.starts_with("::"))
        .then(|| lead + word_len + (t[word_len..].len() - rest.len()))
}

/// A declaration begins with a type: two identifiers in a row (`int i`, `struct kvm *kvm`,
/// `unsigned long n`), with `*`s between them allowed.
fn is_declaration(text: &str) -> bool {
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
fn declaration_initializer(text: &str) -> Option<usize> {
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

fn is_warn(statement: &str) -> bool {
    let t = statement.trim_start();
    t.starts_with("WARN") && t.trim_end().ends_with(");")
}

/// Every single-token change of a site: `(operator, mutated text)`.
fn variants(text: &str, masked: &str, kind: SiteKind) -> Vec<(&'static str, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "\
// SPDX
#include \"kvm_host.h\"
#define FOO 1
/* a comment with if (a < b) */
static int f(struct s *slots, int n)
{
\tstruct kvm_memory_slot *m = slots->memslots;
\tint i = slots->used_slots - 1;

\tif (n >= slots->used_slots &&
\t    !m[n].npages)
\t\treturn -EINVAL;
\tfor (i = 0; i < n; i++)
\t\tslots->id_to_index[m[i].id] = i;
#ifdef MEMSLOT_FIX_X
\tslots->used_slots--;
#else
\tslots->used_slots++;
#endif
out:
\tWARN_ON(n > 5);
\treturn i << 2;
}
static const int table[] = { 1, 2 };
";

    fn defines() -> HashSet<String> {
        ["MEMSLOT_FIX_X".to_string()].into_iter().collect()
    }

    #[test]
    fn sites_and_operators() {
        let m = mutate(SOURCE, "t/kvm_main.c", &defines(), &|_| true, 10);
        let keys: Vec<String> = m
            .mutants
            .iter()
            .map(|m| format!("{} {}", m.line, m.key()))
            .collect();
        // `-EINVAL` is unary: not mutated.
        assert!(!keys.iter().any(|k| k.contains("+EINVAL")), "{keys:#?}");
        for e in [
            "8 t/kvm_main.c f: off-by-one: `slots->used_slots - 1` -> `slots->used_slots`",
            "10 t/kvm_main.c f: relational: `n >= slots->used_slots && !m[n].npages` -> `n > slots->used_slots && !m[n].npages`",
            "10 t/kvm_main.c f: logical: `n >= slots->used_slots && !m[n].npages` -> `n >= slots->used_slots || !m[n].npages`",
            "10 t/kvm_main.c f: negate: `n >= slots->used_slots && !m[n].npages` -> `n >= slots->used_slots && m[n].npages`",
            "10 t/kvm_main.c f: negate: `n >= slots->used_slots && !m[n].npages` -> `!(n >= slots->used_slots && !m[n].npages)`",
            "13 t/kvm_main.c f: relational: `i < n` -> `i <= n`",
            "13 t/kvm_main.c f: negate: `i < n` -> `!(i < n)`",
            "13 t/kvm_main.c f: increment: `i++` -> `i--`",
            "14 t/kvm_main.c f: drop: `slots->id_to_index[m[i].id] = i;` -> ``",
            "16 t/kvm_main.c f: increment: `slots->used_slots--;` -> `slots->used_slots++;`",
            "16 t/kvm_main.c f: drop: `slots->used_slots--;` -> ``",
        ] {
            assert!(keys.iter().any(|k| k == e), "missing {e} in {keys:#?}");
        }
        // A WARN statement's condition is mutated; the statement is not dropped.
        assert!(keys
            .iter()
            .any(|k| k.contains("`WARN_ON(n > 5);` -> `WARN_ON(n >= 5);`")));
        assert!(
            !keys.iter().any(|k| k.contains("drop: `WARN_ON")),
            "{keys:#?}"
        );
        // Not mutated: the comment, the inactive branch, `<<`, the label, the table.
        assert!(
            !keys
                .iter()
                .any(|k| k.starts_with("4 ") || k.starts_with("18 ")),
            "{keys:#?}"
        );
        assert!(!keys.iter().any(|k| k.contains("<<")), "{keys:#?}");
        assert_eq!(m.mutants[0].id, 10);
        assert!(m.mutants.windows(2).all(|w| w[1].id == w[0].id + 1));
    }

    #[test]
    fn schemata_keep_the_lines_and_compile_every_mutant_in() {
        let m = mutate(SOURCE, "t/kvm_main.c", &defines(), &|_| true, 0);
        assert_eq!(m.schemata.lines().count(), SOURCE.lines().count());
        for mutant in &m.mutants {
            assert!(m
                .schemata
                .contains(&format!("__memslot_mutant_is({})", mutant.id)));
        }
        let line14 = m.schemata.lines().nth(13).unwrap();
        assert!(line14.contains("if (!__memslot_mutant_is("), "{line14}");
        assert!(
            line14.ends_with("{ slots->id_to_index[m[i].id] = i; } }"),
            "{line14}"
        );
        // The inactive branch is kept as it was.
        assert_eq!(
            m.schemata.lines().nth(17).unwrap(),
            "\tslots->used_slots++;"
        );
    }

    #[test]
    fn declarations_and_labels() {
        assert!(is_declaration("struct kvm_memory_slot *m = x"));
        assert!(is_declaration("unsigned long npages"));
        assert!(!is_declaration("slots->used_slots--"));
        assert!(!is_declaration("kvfree(slots)"));
        assert_eq!(declaration_initializer("int i = a == b"), Some(6));
        assert_eq!(label_end("out:\n\treturn r"), Some(3));
        assert_eq!(label_end("x = a ? b : c"), None);
    }
}
