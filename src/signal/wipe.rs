//! `Vec` operations that leave no copy of their elements behind.
//!
//! Removing from the middle of a `Vec` shifts the tail down and leaves the last element's
//! old bytes in the spare capacity; growing it copies everything into a new buffer and frees
//! the old one unwiped. For vectors of keys (skipped message keys, session states) these
//! helpers wipe what the standard operations leave.

use crate::prelude::*;

use zeroize::Zeroize;

/// Zeroes the memory past `len` (volatile writes, so they are not optimised away).
pub(crate) fn wipe_spare<T>(v: &mut Vec<T>) {
    v.spare_capacity_mut().zeroize();
}

/// `v.remove(pos)`, wiping the slot the shift vacated.
pub(crate) fn remove<T>(v: &mut Vec<T>, pos: usize) -> Option<T> {
    if pos >= v.len() {
        return None;
    }
    let item = v.remove(pos);
    wipe_spare(v);
    Some(item)
}

/// Drops the first `n` elements, wiping the slots the shift vacated.
pub(crate) fn drop_front<T>(v: &mut Vec<T>, n: usize) {
    v.drain(..n.min(v.len()));
    wipe_spare(v);
}

/// `v.truncate(len)`, wiping the vacated slots.
pub(crate) fn truncate<T>(v: &mut Vec<T>, len: usize) {
    v.truncate(len);
    wipe_spare(v);
}

/// Makes room for `extra` more elements. When that takes a bigger buffer, the elements move
/// over and the old buffer is wiped before it is freed.
pub(crate) fn reserve<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() >= extra {
        return;
    }
    let wanted = v
        .len()
        .saturating_add(extra)
        .max(v.capacity().saturating_mul(2));
    let mut bigger = Vec::with_capacity(wanted);
    bigger.append(v);
    wipe_spare(v);
    *v = bigger;
}

/// `v.push(item)` without leaving an unwiped copy when the buffer grows.
pub(crate) fn push<T>(v: &mut Vec<T>, item: T) {
    reserve(v, 1);
    v.push(item);
}

/// `v.insert(pos, item)` without leaving an unwiped copy when the buffer grows.
pub(crate) fn insert<T>(v: &mut Vec<T>, pos: usize, item: T) {
    reserve(v, 1);
    v.insert(pos.min(v.len()), item);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::scanning_alloc::freed_blocks_holding;
    use rand::RngCore;
    use zeroize::Zeroizing;

    type Secret = Zeroizing<[u8; 32]>;

    fn secrets(n: usize) -> Vec<Secret> {
        (0..n)
            .map(|_| {
                let mut s = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(&mut *s);
                s
            })
            .collect()
    }

    /// Elements wipe themselves when dropped; what a `Vec` operation leaves in the spare
    /// capacity (or in a buffer it outgrew) is found when the buffer is freed.
    fn leaves_no_copy(op: impl Fn(&mut Vec<Secret>), with_std: impl Fn(&mut Vec<Secret>)) {
        for (operation, expect_leak) in
            [(&op as &dyn Fn(&mut Vec<Secret>), false), (&with_std, true)]
        {
            let mut v = secrets(8);
            v.reserve_exact(0);
            let last: [u8; 32] = *v[7];
            let hits = freed_blocks_holding(&last, || {
                operation(&mut v);
                drop(core::mem::take(&mut v));
            });
            assert_eq!(hits > 0, expect_leak, "hits: {hits}");
        }
    }

    #[test]
    fn removing_leaves_no_copy_where_vec_remove_does() {
        leaves_no_copy(|v| drop(remove(v, 0)), |v| drop(v.remove(0)));
        leaves_no_copy(|v| drop_front(v, 3), |v| drop(v.drain(..3)));
    }

    #[test]
    fn growing_leaves_no_copy_where_vec_push_does() {
        let fresh = || secrets(1).remove(0);
        leaves_no_copy(
            |v| {
                v.shrink_to_fit();
                push(v, fresh());
            },
            |v| {
                v.shrink_to_fit();
                v.push(fresh());
            },
        );
        leaves_no_copy(
            |v| {
                v.shrink_to_fit();
                insert(v, 0, fresh());
            },
            |v| {
                v.shrink_to_fit();
                v.insert(0, fresh());
            },
        );
    }

    #[test]
    fn operations_keep_the_elements_and_order() {
        let mut v: Vec<u32> = Vec::new();
        for i in 0..10 {
            push(&mut v, i);
        }
        insert(&mut v, 0, 100);
        assert_eq!(remove(&mut v, 1), Some(0));
        assert_eq!(remove(&mut v, 99), None);
        drop_front(&mut v, 2);
        truncate(&mut v, 5);
        assert_eq!(v, [2, 3, 4, 5, 6]);
        drop_front(&mut v, 50);
        assert!(v.is_empty());
    }
}
