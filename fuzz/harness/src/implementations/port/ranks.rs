//! The modern port's walks and range answers in array order: the ids ranked by the index its
//! state copy gives them (its gfn tree in descending order is the "array").

/// `(rank, id)` of each of `ids` in `ranked` (a reused buffer), sorted: the rank `rank_of`
/// gives it (asked once per id, in order), an id without one last.
pub(super) fn rank_sorted(
    ranked: &mut Vec<(u32, i32)>,
    ids: impl Iterator<Item = i32>,
    mut rank_of: impl FnMut(i32) -> Option<u32>,
) {
    ranked.clear();
    ranked.extend(ids.map(|id| (rank_of(id).unwrap_or(u32::MAX), id)));
    ranked.sort_unstable();
}

/// `ids` in array order (see [`rank_sorted`]): how a walk or a range answer is compared.
pub(super) fn sort_by_rank(
    ranked: &mut Vec<(u32, i32)>,
    ids: &mut Vec<i32>,
    rank_of: impl FnMut(i32) -> Option<u32>,
) {
    rank_sorted(ranked, ids.drain(..), rank_of);
    ids.extend(ranked.iter().map(|&(_, id)| id));
}

/// The index `id_to_index` gives `id`, if it has one.
pub(super) fn index_in(id_to_index: &[i16], id: i32) -> Option<u32> {
    usize::try_from(id)
        .ok()
        .and_then(|i| id_to_index.get(i))
        .and_then(|&k| u32::try_from(k).ok())
}

/// Keeps a state copy's index for ranking range answers until the next request.
pub(super) fn keep_index(kept: &mut Vec<i16>, valid: &mut bool, id_to_index: &[i16]) {
    kept.clear();
    kept.extend_from_slice(id_to_index);
    *valid = true;
}
