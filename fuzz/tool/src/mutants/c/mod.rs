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

mod operators;
mod scan;
mod sites;

use std::collections::HashSet;

use operators::variants;
use scan::code_only;
use sites::sites;

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
pub(super) enum SiteKind {
    /// An expression: a condition, an initializer, a return value, a `for` step.
    Expression { condition: bool },
    /// A whole expression statement, up to and including its `;`.
    Statement,
}

pub(super) struct Site {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: SiteKind,
    pub(super) function: String,
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

#[cfg(test)]
mod tests {
    use super::sites::*;
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
