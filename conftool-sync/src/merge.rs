//! The sync's contract for every kind of object (pool objects and the objects of schema
//! types alike), written once: an object declared and not stored is created, one stored and
//! no longer declared is deleted, and one both declared and stored is left alone (its values
//! are the operators'). Pure.

use std::cmp::Ordering;

/// Walk `want` (what the directory declares) and `have` (what etcd holds), both sorted by
/// key with each key once, in one pass: `create` is called for each key only declared and
/// `delete` for each key only stored, each in key order.
pub(crate) fn merge<K: Ord, W, H>(
    want: impl IntoIterator<Item = (K, W)>,
    have: impl IntoIterator<Item = (K, H)>,
    mut create: impl FnMut(K, W),
    mut delete: impl FnMut(K, H),
) {
    let mut want = want.into_iter().peekable();
    let mut have = have.into_iter().peekable();
    loop {
        let order = match (want.peek(), have.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((w, _)), Some((h, _))) => w.cmp(h),
        };
        match order {
            Ordering::Less => {
                if let Some((k, w)) = want.next() {
                    create(k, w);
                }
            }
            Ordering::Greater => {
                if let Some((k, h)) = have.next() {
                    delete(k, h);
                }
            }
            Ordering::Equal => {
                want.next();
                have.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::merge;

    fn run(want: &[u8], have: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut created, mut deleted) = (Vec::new(), Vec::new());
        merge(
            want.iter().map(|&k| (k, ())),
            have.iter().map(|&k| (k, ())),
            |k, ()| created.push(k),
            |k, ()| deleted.push(k),
        );
        (created, deleted)
    }

    #[test]
    fn creates_what_only_the_directory_has_deletes_what_only_etcd_has_in_key_order() {
        assert_eq!(run(&[], &[]), (vec![], vec![]));
        assert_eq!(run(&[1, 2], &[]), (vec![1, 2], vec![]));
        assert_eq!(run(&[], &[1, 2]), (vec![], vec![1, 2]));
        assert_eq!(run(&[1, 3, 5], &[2, 3, 4, 6]), (vec![1, 5], vec![2, 4, 6]));
        assert_eq!(run(&[7], &[7]), (vec![], vec![]), "kept: neither");
    }

    #[test]
    fn on_every_pair_of_small_sets_it_is_the_set_differences() {
        // Every subset of 0..6 against every other: 4,096 pairs.
        for a in 0u8..64 {
            for b in 0u8..64 {
                let set = |m: u8| (0..6).filter(|i| m & (1 << i) != 0).collect::<Vec<u8>>();
                let (want, have) = (set(a), set(b));
                let (created, deleted) = run(&want, &have);
                let (w, h): (BTreeSet<u8>, BTreeSet<u8>) = (
                    want.iter().copied().collect(),
                    have.iter().copied().collect(),
                );
                assert_eq!(created, w.difference(&h).copied().collect::<Vec<_>>());
                assert_eq!(deleted, h.difference(&w).copied().collect::<Vec<_>>());
            }
        }
    }
}
