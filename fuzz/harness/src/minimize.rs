//! Shrinking a diverging program to fewer operations with the same signature.
//!
//! libFuzzer's `-minimize_crash` shrinks bytes, and a byte that goes away can turn an
//! operation into another one; this works on operations instead: it drops the steps after the
//! divergence, then removes ever smaller groups of operations (delta debugging, Zeller's
//! ddmin on complements) while the program still diverges with the same
//! [signature](crate::report::signature). Every candidate is replayed in full, so the result
//! reproduces exactly as `memslot-diff replay` and `cargo test` will run it.

use std::time::Instant;

use crate::ops::Op;
use crate::report::signature;
use crate::runner::Divergence;

/// What [`minimize`] found.
#[derive(Debug)]
pub struct Minimized {
    /// The smallest program found; it diverges with [`Minimized::signature`].
    pub ops: Vec<Op>,
    /// The signature of the original divergence, which every kept candidate reproduced.
    pub signature: String,
    /// Candidate programs replayed.
    pub runs: usize,
    /// Whether every single operation was tried alone for removal (no further shrinking by
    /// removal is possible); false when the deadline stopped the search first.
    pub complete: bool,
}

/// Shrink `ops`, replaying candidates with `diverge` (None: every implementation agrees)
/// until `deadline`. Errors when `ops` itself does not diverge.
pub fn minimize(
    ops: &[Op],
    deadline: Instant,
    mut diverge: impl FnMut(&[Op]) -> Option<Box<Divergence>>,
) -> Result<Minimized, String> {
    let first = diverge(ops).ok_or("nothing to minimize: all implementations agree")?;
    let wanted = signature(&first);
    let mut runs = 1;
    // A candidate is kept when it diverges with the wanted signature; then without the steps
    // after its divergence, when that still does (the last step of a run gets the full check,
    // so cutting a program short can change what is seen first).
    let mut accept = |candidate: Vec<Op>, runs: &mut usize| -> Option<Vec<Op>> {
        *runs += 1;
        let d = diverge(&candidate).filter(|d| signature(d) == wanted)?;
        if d.ops.len() < candidate.len() {
            *runs += 1;
            if diverge(&d.ops).is_some_and(|e| signature(&e) == wanted) {
                return Some(d.ops);
            }
        }
        Some(candidate)
    };
    let mut best = ops.to_vec();
    if first.ops.len() < ops.len() {
        best = accept(ops.to_vec(), &mut runs).unwrap_or(best);
    }
    let mut granularity = 2;
    let complete = loop {
        if best.len() <= 1 {
            break true;
        }
        let n = granularity.min(best.len());
        let chunk = best.len().div_ceil(n);
        let mut shrunk = false;
        for start in (0..best.len()).step_by(chunk) {
            if Instant::now() >= deadline {
                return Ok(Minimized {
                    ops: best,
                    signature: wanted,
                    runs,
                    complete: false,
                });
            }
            let mut candidate = best[..start].to_vec();
            candidate.extend_from_slice(&best[(start + chunk).min(best.len())..]);
            if let Some(kept) = accept(candidate, &mut runs) {
                best = kept;
                shrunk = true;
                break;
            }
        }
        if shrunk {
            granularity = (n - 1).max(2);
        } else if n == best.len() {
            break true;
        } else {
            granularity = (n * 2).min(best.len());
        }
    };
    Ok(Minimized {
        ops: best,
        signature: wanted,
        runs,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Region;
    use crate::runner::{standard_implementations, RunOptions, Runner};
    use std::time::Duration;

    fn create(id: u16, gfn: u64, pages: u64) -> Op {
        Op::Set(Region::new(
            0,
            id,
            gfn << 12,
            pages << 12,
            0x7000_0000_0000 + (gfn << 12),
            0,
        ))
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// The standard set with the core's delete broken on purpose: a real divergence to shrink.
    fn broken(ops: &[Op]) -> Option<Box<Divergence>> {
        let mut impls = standard_implementations();
        impls[0] = Box::new(crate::implementations::core::CoreImpl::with_fault(
            memslot_core::Fault::DeleteKeepsIndex,
        ));
        Runner::new(impls, RunOptions::default())
            .run(ops)
            .divergence
    }

    /// Twenty slots, a delete in the middle, twenty more: the delete diverges.
    fn padded() -> Vec<Op> {
        let mut ops = (0..20)
            .map(|i| create(i, 0x100 * u64::from(i), 0x10))
            .collect::<Vec<_>>();
        ops.push(create(10, 0, 0)); // size 0: delete
        ops.extend((20..40).map(|i| create(i, 0x100 * u64::from(i), 0x10)));
        ops
    }

    #[test]
    fn operations_before_and_after_a_divergence_go_away() {
        let original = broken(&padded()).expect("the fault shows");
        let m = minimize(&padded(), later(), broken).unwrap();
        assert!(m.complete);
        assert_eq!(m.signature, signature(&original));
        assert!(m.ops.len() < original.ops.len() / 2, "{:?}", m.ops);
        let again = broken(&m.ops).expect("the result still diverges");
        assert_eq!(signature(&again), m.signature);
        // One-minimal: no single operation can go.
        for i in 0..m.ops.len() {
            let mut fewer = m.ops.clone();
            fewer.remove(i);
            assert_ne!(
                broken(&fewer).map(|d| signature(&d)),
                Some(m.signature.clone())
            );
        }
    }

    #[test]
    fn only_the_needed_operations_stay() {
        // A model divergence: it needs ops 3 and 7, in that order, and nothing else.
        let ops = (0..40)
            .map(|i| create(i, u64::from(i), 1))
            .collect::<Vec<_>>();
        let needed = [ops[3], ops[7]];
        let m = minimize(&ops, later(), |candidate| {
            let at = candidate.iter().position(|o| *o == needed[0])?;
            let end = at + 1 + candidate[at + 1..].iter().position(|o| *o == needed[1])?;
            let mut d = broken(&padded()).unwrap();
            d.ops = candidate[..=end].to_vec();
            Some(d)
        })
        .unwrap();
        assert_eq!(m.ops, needed);
        assert!(m.complete);
    }

    #[test]
    fn an_agreeing_program_is_refused() {
        let err = minimize(&[create(0, 0, 1)], later(), |_| None).unwrap_err();
        assert!(err.contains("all implementations agree"), "{err}");
    }

    #[test]
    fn the_deadline_stops_the_search_with_a_diverging_program() {
        let m = minimize(&padded(), Instant::now(), broken).unwrap();
        assert!(!m.complete);
        assert_eq!(signature(&broken(&m.ops).unwrap()), m.signature);
    }
}
