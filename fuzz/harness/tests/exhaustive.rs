//! Small-scope exhaustive test: every sequence of 4 operations from a small universe agrees
//! across all implementations (every shorter sequence is a prefix of one, and the runner
//! compares after every step, so sequences of 1 to 4 operations are all covered).
//!
//! Universe: 2 user ids (0, 1) and one private id (509) in AS 0, plus one slot in AS 1;
//! GFNs 0..5, sizes of 1 and 2 pages; creates, moves (over itself, past the other slot), a
//! dirty-logging toggle, a READONLY toggle (refused), deletes (present and absent), in-kernel
//! create/delete of the private slot, overlapping requests, lookups at the edges and an id
//! query: 18 operations, so 18^4 = 104,976 programs of 4 steps (419,904 steps), each checked
//! with the full set of probes. Takes about 15 s in a debug build.

use memslot_harness::{run, Op, Region};

fn set(id: u16, gfn: u64, pages: u64, flags: u32) -> Op {
    Op::Set(Region::new(
        0,
        id,
        gfn << 12,
        pages << 12,
        0x1000_0000 + (u64::from(id) << 24),
        flags,
    ))
}

fn universe() -> Vec<Op> {
    vec![
        set(0, 0, 2, 0),                                              // create A at 0..2
        set(0, 1, 2, 0), // A over itself to 1..3 (or create)
        set(0, 3, 2, 0), // A past B
        set(0, 0, 2, 1), // dirty logging on A (or create)
        set(0, 0, 2, 2), // READONLY toggle on A: refused
        set(1, 2, 1, 0), // create B at 2
        set(1, 4, 1, 0), // B to 4
        set(0, 0, 0, 0), // delete A (or absent)
        set(1, 0, 0, 0), // delete B (or absent)
        Op::KSet(Region::new(0, 509, 5 << 12, 1 << 12, 0, 0)), // private slot at 5
        Op::KSet(Region::new(0, 509, 0, 0, 0, 0)), // delete it
        Op::Set(Region::new(1, 0, 1 << 12, 2 << 12, 0x2000_0000, 0)), // AS 1 slot
        set(1, 1, 1, 0), // B onto A's range
        set(0, 2, 2, 0), // A next to / onto B
        Op::Lookup { as_id: 0, gfn: 2 },
        Op::Lookup { as_id: 0, gfn: 0 },
        Op::Lookup { as_id: 0, gfn: 4 },
        Op::Id { as_id: 0, id: 0 },
    ]
}

#[test]
fn every_four_step_program_agrees() {
    let u = universe();
    let n = u.len();
    let mut programs = 0;
    for i in 0..n.pow(4) {
        let ops = [u[i % n], u[i / n % n], u[i / n / n % n], u[i / n / n / n]];
        let result = run(&ops);
        if let Some(d) = result.divergence {
            panic!(
                "{}",
                memslot_harness::report::render(&d, &Default::default())
            );
        }
        assert_eq!(result.stats.steps, 4);
        programs += 1;
    }
    assert_eq!(programs, 104_976);
}
