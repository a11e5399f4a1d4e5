//! The lookups and id queries after each step, at the GFNs and ids where bugs live.

use memslot_reference::ApiSlot;

use super::compare::{all_equal, lru_text};
use super::{range_points, Findings, Runner};
use crate::arch_profile::ArchProfile;
use crate::implementations::found_text;
use crate::ops::{Op, Region2, MAX_GFN};

/// Above this many slots in an address space, probes cover only the region an operation touched.
pub const PROBE_ALL_LIMIT: usize = 32;

impl Runner {
    /// Lookups and id queries at interesting places, with the LRU hints restored afterwards.
    /// `layout` is the array now, `before` the one before the operation.
    pub(super) fn probe(
        &mut self,
        as_id: u16,
        op: &Op,
        generation: u64,
        layout: &[ApiSlot],
        before: &[ApiSlot],
        findings: &mut Findings,
    ) {
        let a = usize::from(as_id);
        let mut sc = std::mem::take(&mut self.scratch);
        sc.lrus.clear();
        sc.lrus.extend(self.impls.iter_mut().map(|i| i.lru(as_id)));
        match &mut self.probed[a] {
            // Same array, same hints: the probes would repeat the last ones.
            Some((g, hints)) if *g == generation && *hints == sc.lrus => {
                self.scratch = sc;
                return;
            }
            Some((g, hints)) => {
                *g = generation;
                hints.clone_from(&sc.lrus);
            }
            probed @ None => *probed = Some((generation, sc.lrus.clone())),
        }
        probe_points(self.arch, layout, before, op, &mut sc.gfns, &mut sc.ids);
        sc.probe_warns.clear();
        sc.probe_warns
            .extend(self.impls.iter().map(|i| i.warn_count()));
        'probes: {
            // Every implementation does its round of lookups, then the answers are compared
            // probe by probe: each one's lookups and hints evolve by its own answers only.
            let n = self.impls.len();
            sc.searches.resize_with(n, Vec::new);
            for (imp, answers) in self.impls.iter_mut().zip(sc.searches.iter_mut()) {
                imp.search_each(as_id, &sc.gfns, answers);
            }
            for (k, &gfn) in sc.gfns.iter().enumerate() {
                self.stats.probes += 1;
                sc.found.clear();
                sc.found.extend(sc.searches.iter().map(|a| a[k].0));
                if !all_equal(&sc.found) {
                    let details = self.lines(&sc.found, |f| found_text(f.as_ref()));
                    findings.push((
                        format!("lookup gfn {gfn:#x} in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
                sc.after.clear();
                sc.after.extend(sc.searches.iter().map(|a| a[k].1));
                let mut known = sc.after.iter().flatten();
                let first = known.next();
                if !known.all(|l| Some(l) == first) {
                    let details = self.lines(&sc.after, |l| lru_text(*l));
                    findings.push((
                        format!("LRU hint of AS {as_id} after probe lookup gfn {gfn:#x}"),
                        details,
                    ));
                    break 'probes;
                }
            }
            sc.id_answers.resize_with(n, Vec::new);
            for (imp, answers) in self.impls.iter_mut().zip(sc.id_answers.iter_mut()) {
                imp.id_to_memslot_each(as_id, &sc.ids, answers);
            }
            for (k, &id) in sc.ids.iter().enumerate() {
                self.stats.probes += 1;
                sc.found.clear();
                sc.found.extend(sc.id_answers.iter().map(|a| a[k]));
                if !all_equal(&sc.found) {
                    let details = self.lines(&sc.found, |f| found_text(f.as_ref()));
                    findings.push((
                        format!("id_to_memslot of id {id} in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
            }
            // A lookup or an id query changes no slot: the ranges answer as after the last
            // request, which compared them.
            if op.region().is_none() {
                break 'probes;
            }
            range_points(layout, before, op, &mut sc.gfn_ranges, &mut sc.hva_ranges);
            sc.answers.resize_with(self.impls.len(), Default::default);
            let queries = sc
                .gfn_ranges
                .iter()
                .map(|&r| (false, r))
                .chain(sc.hva_ranges.iter().map(|&r| (true, r)));
            for (hva, (start, end)) in queries {
                self.stats.probes += 1;
                for (imp, (answered, ids)) in self.impls.iter_mut().zip(sc.answers.iter_mut()) {
                    *answered = if hva {
                        imp.hva_range(as_id, start, end, ids)
                    } else {
                        imp.gfn_range(as_id, start, end, ids)
                    };
                }
                let mut known = sc.answers.iter().filter(|a| a.0).map(|a| &a.1);
                let first = known.next();
                if !known.all(|ids| Some(ids) == first) {
                    let details = self.lines(&sc.answers, |(answered, ids)| {
                        if *answered {
                            format!("{ids:?}")
                        } else {
                            "(not supported)".to_string()
                        }
                    });
                    let what = if hva { "host addresses" } else { "GFNs" };
                    findings.push((
                        format!("slots in {what} [{start:#x}, {end:#x}) in AS {as_id} (probe)"),
                        details,
                    ));
                    break 'probes;
                }
            }
        }
        for (imp, lru) in self.impls.iter_mut().zip(&sc.lrus) {
            if let Some(lru) = lru {
                imp.set_lru(as_id, *lru);
            }
        }
        self.check_warns(&sc.probe_warns, findings);
        self.scratch = sc;
    }
}

/// The GFNs and ids to probe after `op`. Small layouts are probed everywhere; large ones
/// around the slots the operation touched (`before` is the layout before it), plus 0 and the
/// top of the GFN space.
pub fn probe_points(
    arch: ArchProfile,
    layout: &[ApiSlot],
    before: &[ApiSlot],
    op: &Op,
    gfns: &mut Vec<u64>,
    ids: &mut Vec<u16>,
) {
    gfns.clear();
    gfns.extend([0, 1, MAX_GFN, u64::MAX >> 12, u64::MAX]);
    ids.clear();
    // Both sides of the user and the private limit (x86-512: 508 ... 512).
    let (user, all) = (arch.user_mem_slots(), arch.mem_slots_num());
    ids.extend([0, 1, user - 1, user, user + 1, all - 1, all, u16::MAX]);
    match op {
        Op::Set(r) | Op::KSet(r) => ids.push(r.id()),
        Op::Id { id, .. } => ids.push(*id),
        _ => {}
    }
    // The slots to probe around: all of them, or (at most 5 places, 3 slots each) near
    // what the operation touched.
    let mut near = [0usize; 15];
    let mut chosen = 0;
    let all = layout.len() <= PROBE_ALL_LIMIT;
    if !all {
        let mut around = |gfn: u64| {
            // First index whose base is <= gfn, and its neighbours.
            let i = layout.partition_point(|s| s.base_gfn > gfn);
            for k in i.saturating_sub(1)..(i + 2).min(layout.len()) {
                near[chosen] = k;
                chosen += 1;
            }
        };
        match op {
            Op::Set(r) | Op::KSet(r) | Op::Set2(Region2 { region: r, .. }) => {
                around(r.guest_phys_addr >> 12);
                if let Some(old) = before.iter().find(|s| i32::from(s.id) == i32::from(r.id())) {
                    around(old.base_gfn);
                }
                if let Some(now) = layout.iter().find(|s| i32::from(s.id) == i32::from(r.id())) {
                    around(now.base_gfn);
                }
            }
            Op::Lookup { gfn, .. } => around(*gfn),
            Op::Id { .. } | Op::FailPrepare { .. } => {}
        }
        around(0);
        around(MAX_GFN);
        near[..chosen].sort_unstable();
    }
    let chosen = if all { 0..layout.len() } else { 0..chosen };
    for k in chosen {
        let i = if all { k } else { near[k] };
        if !all && k > 0 && near[k - 1] == i {
            continue;
        }
        let s = &layout[i];
        let end = s.base_gfn.saturating_add(s.npages);
        gfns.extend([s.base_gfn, end - 1, s.base_gfn.wrapping_sub(1), end]);
        if let Some(lower) = layout.get(i + 1) {
            let gap_start = lower.base_gfn.saturating_add(lower.npages);
            if s.base_gfn > gap_start + 1 {
                gfns.push(gap_start + (s.base_gfn - gap_start) / 2);
            }
        }
        ids.push(s.id as u16);
    }
    gfns.sort_unstable();
    gfns.dedup();
    ids.sort_unstable();
    ids.dedup();
}
