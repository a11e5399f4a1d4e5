//! The interval index over host addresses (the kernel's `hva_tree`, an augmented rb-tree):
//! a treap keyed by `(start, id)` whose nodes also hold the largest interval end of their
//! subtree, so that a query visits only subtrees that can hold an overlapping interval:
//! O(log n + k) expected for k results. Priorities are a hash of the key, so the shape does
//! not depend on insertion order (ascending set-up would otherwise build a list).

/// Key of an interval: its start, then the slot id (host ranges may start at the same address).
pub(crate) type Key = (u64, u16);

type Link<V> = Option<Box<Node<V>>>;

#[derive(Clone, Debug)]
struct Node<V> {
    key: Key,
    /// Exclusive end of this interval.
    end: u64,
    /// The largest `end` in this subtree.
    max_end: u64,
    priority: u64,
    value: V,
    left: Link<V>,
    right: Link<V>,
}

impl<V> Node<V> {
    fn update(&mut self) {
        let sub = |l: &Link<V>| l.as_ref().map_or(0, |n| n.max_end);
        self.max_end = self.end.max(sub(&self.left)).max(sub(&self.right));
    }
}

/// splitmix64 of the key: a fixed pseudo-random priority.
fn priority(key: Key) -> u64 {
    let mut z = key.0 ^ (u64::from(key.1) << 48) ^ u64::from(key.1);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Intervals `[start, end)` with a value each, at most one per key.
#[derive(Clone, Debug)]
pub(crate) struct IntervalTree<V> {
    root: Link<V>,
    len: usize,
    /// `Fault::IntervalStaleMaxEnd` armed (the harness's self-test).
    #[cfg(feature = "fault-injection")]
    pub(crate) stale_max_end: bool,
}

impl<V> Default for IntervalTree<V> {
    fn default() -> Self {
        IntervalTree {
            root: None,
            len: 0,
            #[cfg(feature = "fault-injection")]
            stale_max_end: false,
        }
    }
}

/// Splits `t` into the keys `< key` and the keys `>= key`.
fn split<V>(t: Link<V>, key: Key) -> (Link<V>, Link<V>) {
    match t {
        None => (None, None),
        Some(mut n) => {
            if n.key < key {
                let (l, r) = split(n.right.take(), key);
                n.right = l;
                n.update();
                (Some(n), r)
            } else {
                let (l, r) = split(n.left.take(), key);
                n.left = r;
                n.update();
                (l, Some(n))
            }
        }
    }
}

/// Joins two treaps, every key of `a` below every key of `b`.
fn merge<V>(a: Link<V>, b: Link<V>) -> Link<V> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(mut x), Some(mut y)) => {
            if x.priority > y.priority {
                x.right = merge(x.right.take(), Some(y));
                x.update();
                Some(x)
            } else {
                y.left = merge(Some(x), y.left.take());
                y.update();
                Some(y)
            }
        }
    }
}

/// Inserts a node whose key is absent: down the search path while the priorities are
/// higher, then the subtree there is split around the new node.
fn insert<V>(link: &mut Link<V>, mut node: Box<Node<V>>, stale_max_end: bool) {
    match link {
        Some(n) if n.priority >= node.priority => {
            if !stale_max_end {
                n.max_end = n.max_end.max(node.end);
            }
            if node.key < n.key {
                insert(&mut n.left, node, stale_max_end);
            } else {
                insert(&mut n.right, node, stale_max_end);
            }
        }
        _ => {
            let (l, r) = split(link.take(), node.key);
            node.left = l;
            node.right = r;
            node.update();
            *link = Some(node);
        }
    }
}

fn remove<V>(link: &mut Link<V>, key: Key) -> Option<V> {
    let order = key.cmp(&link.as_ref()?.key);
    let removed = match order {
        std::cmp::Ordering::Equal => {
            let mut n = link.take()?;
            *link = merge(n.left.take(), n.right.take());
            return Some(n.value);
        }
        std::cmp::Ordering::Less => remove(&mut link.as_mut()?.left, key),
        std::cmp::Ordering::Greater => remove(&mut link.as_mut()?.right, key),
    };
    if removed.is_some() {
        link.as_mut()?.update();
    }
    removed
}

fn query<'a, V>(link: &'a Link<V>, start: u64, end: u64, out: &mut Vec<&'a V>) {
    let Some(n) = link else { return };
    if n.max_end <= start {
        return; // Nothing in this subtree reaches the range.
    }
    query(&n.left, start, end, out);
    if n.key.0 < end {
        if n.end > start {
            out.push(&n.value);
        }
        query(&n.right, start, end, out);
    }
}

impl<V> IntervalTree<V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `[key.0, end)`; a value already under `key` is replaced and returned.
    pub(crate) fn insert(&mut self, key: Key, end: u64, value: V) -> Option<V> {
        let old = self.remove(key);
        let node = Box::new(Node {
            key,
            end,
            max_end: end,
            priority: priority(key),
            value,
            left: None,
            right: None,
        });
        #[cfg(feature = "fault-injection")]
        let stale_max_end = self.stale_max_end;
        #[cfg(not(feature = "fault-injection"))]
        let stale_max_end = false;
        insert(&mut self.root, node, stale_max_end);
        self.len += 1;
        old
    }

    /// Replaces the value of the interval `key` if it ends at `end`, in place (the
    /// kernel's `rb_replace_node`); `Err(value)` if there is no such interval.
    pub(crate) fn replace(&mut self, key: Key, end: u64, value: V) -> Result<V, V> {
        let mut link = &mut self.root;
        while let Some(n) = link {
            match key.cmp(&n.key) {
                std::cmp::Ordering::Less => link = &mut n.left,
                std::cmp::Ordering::Greater => link = &mut n.right,
                std::cmp::Ordering::Equal if n.end == end => {
                    return Ok(std::mem::replace(&mut n.value, value))
                }
                std::cmp::Ordering::Equal => break,
            }
        }
        Err(value)
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<V> {
        let v = remove(&mut self.root, key);
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    /// The values of the intervals overlapping `[start, end)`, in key order.
    pub(crate) fn overlapping(&self, start: u64, end: u64) -> Vec<&V> {
        let mut out = Vec::new();
        if start < end {
            query(&self.root, start, end, &mut out);
        }
        out
    }

    /// The treap's own invariants: keys in order, heap-ordered priorities, correct `max_end`
    /// and length.
    #[cfg(test)]
    pub(crate) fn check(&self) -> Result<(), String> {
        self.check_each(|_, _, _| true)
    }

    /// [`IntervalTree::check`], and `entry_ok(key, end, value)` for every interval in key
    /// order on the way: the invariants and a caller's per-entry check in one walk.
    ///
    /// The walk runs on the harness's hot path after every request, under the fuzzers'
    /// comparison tracing: each node costs a handful of comparisons, and a problem is noted
    /// and reported after the walk rather than returned through every level.
    pub(crate) fn check_each<'a>(
        &'a self,
        entry_ok: impl FnMut(Key, u64, &'a V) -> bool,
    ) -> Result<(), String> {
        struct Walk<F> {
            /// The last key visited, packed into one number plus one (0: none yet), so that
            /// "above the one before" in this in-order walk is the search-tree order.
            last: u128,
            count: usize,
            first_problem: Option<(Key, &'static str)>,
            entry_ok: F,
        }
        fn walk<'a, V, F: FnMut(Key, u64, &'a V) -> bool>(l: &'a Link<V>, w: &mut Walk<F>) {
            let Some(n) = l else { return };
            walk(&n.left, w);
            let packed = (u128::from(n.key.0) << 16 | u128::from(n.key.1)) + 1;
            let child = |c: &Link<V>| c.as_ref().map_or((0, 0), |c| (c.priority, c.max_end));
            let ((left_priority, left_max), (right_priority, right_max)) =
                (child(&n.left), child(&n.right));
            let problem = if packed <= w.last {
                Some("out of order")
            } else if left_priority.max(right_priority) > n.priority {
                Some("has a child of higher priority")
            } else if n.max_end != n.end.max(left_max).max(right_max) {
                Some("has a stale max_end")
            } else if !(w.entry_ok)(n.key, n.end, &n.value) {
                Some("is filed wrongly")
            } else {
                None
            };
            if let Some(problem) = problem {
                w.first_problem.get_or_insert((n.key, problem));
            }
            w.last = packed;
            w.count += 1;
            walk(&n.right, w);
        }
        let mut w = Walk {
            last: 0,
            count: 0,
            first_problem: None,
            entry_ok,
        };
        walk(&self.root, &mut w);
        if let Some((key, problem)) = w.first_problem {
            return Err(format!("hva tree: entry {key:?} {problem}"));
        }
        if w.count != self.len {
            return Err(format!("hva tree: {} nodes, length {}", w.count, self.len));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_match_a_linear_scan() {
        let mut t = IntervalTree::default();
        let mut all: Vec<(Key, u64)> = Vec::new();
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for i in 0..400u16 {
            let start = next() % 1000;
            let end = start + 1 + next() % 50;
            t.insert((start, i), end, i);
            all.push(((start, i), end));
            if i % 3 == 0 {
                let k = all.remove((next() as usize) % all.len());
                assert_eq!(t.remove(k.0), Some(k.0 .1));
            }
            t.check().unwrap();
        }
        all.sort();
        for _ in 0..500 {
            let s = next() % 1100;
            let e = s + next() % 80;
            let want: Vec<u16> = all
                .iter()
                .filter(|(k, end)| k.0 < e && *end > s && s < e)
                .map(|(k, _)| k.1)
                .collect();
            let got: Vec<u16> = t.overlapping(s, e).into_iter().copied().collect();
            assert_eq!(got, want, "[{s}, {e})");
        }
        assert_eq!(t.len(), all.len());
        let (k, end) = all[0];
        assert_eq!(t.replace(k, end, 999), Ok(k.1));
        assert_eq!(t.replace(k, end + 1, 5), Err(5));
        assert_eq!(
            t.overlapping(k.0, k.0 + 1)
                .into_iter()
                .filter(|&&v| v == 999)
                .count(),
            1
        );
        t.check().unwrap();
    }

    /// Every invariant the check names, broken on a valid tree, is reported; and the
    /// caller's per-entry check is asked about every entry.
    #[test]
    fn check_finds_each_broken_invariant() {
        let valid = || {
            let mut t = IntervalTree::default();
            for i in 0..64u16 {
                let start = u64::from(i) * 10;
                t.insert((start, i), start + 5 + u64::from(i % 7), i);
            }
            t.check().unwrap();
            t
        };
        fn root(t: &mut IntervalTree<u16>) -> &mut Node<u16> {
            t.root.as_mut().unwrap()
        }
        let expect = |t: &IntervalTree<u16>, what: &str| {
            let e = t.check().expect_err(what);
            assert!(e.contains(what), "{e}");
        };

        let mut t = valid();
        root(&mut t).max_end += 1;
        expect(&t, "stale max_end");

        let mut t = valid();
        let n = root(&mut t);
        n.left.as_mut().unwrap().priority = n.priority + 1;
        expect(&t, "child of higher priority");

        let mut t = valid();
        let n = root(&mut t);
        n.left.as_mut().unwrap().key.0 = n.key.0 + 1;
        expect(&t, "out of order");

        let mut t = valid();
        t.len += 1;
        expect(&t, "nodes, length");

        let t = valid();
        let mut seen = 0;
        let e = t
            .check_each(|key, _, &v| {
                seen += 1;
                key.1 != 33 || v != 33
            })
            .unwrap_err();
        assert!(e.contains("(330, 33) is filed wrongly"), "{e}");
        assert_eq!(seen, 64);
    }
}
