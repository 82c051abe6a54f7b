//! The allocator's arithmetic: which index comes next and when the
//! high-water mark must move (SPEC section 1).
//!
//! Owns: the cursor over held blocks, in import order, and the rule that an
//! index at or past a block's reserved mark needs a new mark persisted first.
//! Must not: persist anything; `journal` writes the marks (database and the
//! fsynced file) before it commits an index past the old mark.

use std::sync::Arc;

/// One held block as the allocator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCursor {
    pub block_id: Arc<str>,
    pub start: u64,
    pub count: u64,
    /// Offsets `< used` have been handed out (or skipped after a restart).
    pub used: u64,
    /// Offsets `< reserved` may have been handed out: the high-water mark.
    /// Invariant: `used <= reserved <= count`.
    pub reserved: u64,
}

/// The outcome of taking one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    /// Position of the block in the cursor list.
    pub block: usize,
    pub index: u64,
    /// `Some(mark)` when the block's high-water mark moved and must be made
    /// durable before the index is.
    pub new_mark: Option<u64>,
}

impl BlockCursor {
    pub fn left(&self) -> u64 {
        self.count - self.used
    }
}

/// Takes the next index from the first block (in import order) with room.
/// `None` means every held block is used up: the caller answers `E_NO_IDS`.
pub fn take(blocks: &mut [BlockCursor], reserve_ahead: u64) -> Option<Take> {
    let (pos, b) = blocks
        .iter_mut()
        .enumerate()
        .find(|(_, b)| b.used < b.count)?;
    let offset = b.used;
    let new_mark = if offset >= b.reserved {
        b.reserved = (offset + reserve_ahead.max(1)).min(b.count);
        Some(b.reserved)
    } else {
        None
    };
    b.used += 1;
    Some(Take {
        block: pos,
        index: b.start + offset,
        new_mark,
    })
}

/// IDs left across all blocks.
pub fn left(blocks: &[BlockCursor]) -> u64 {
    blocks.iter().map(BlockCursor::left).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: &str, start: u64, count: u64) -> BlockCursor {
        BlockCursor {
            block_id: id.into(),
            start,
            count,
            used: 0,
            reserved: 0,
        }
    }

    #[test]
    fn takes_blocks_in_order_and_never_leaves_them() {
        let mut b = vec![block("a", 100, 3), block("b", 10, 2)];
        let got: Vec<u64> = std::iter::from_fn(|| take(&mut b, 2).map(|t| t.index)).collect();
        assert_eq!(got, vec![100, 101, 102, 10, 11]);
        assert_eq!(left(&b), 0);
        assert!(take(&mut b, 2).is_none());
    }

    #[test]
    fn the_mark_moves_ahead_of_use_and_only_when_reached() {
        let mut b = vec![block("a", 0, 10)];
        let marks: Vec<Option<u64>> = (0..10).map(|_| take(&mut b, 4).unwrap().new_mark).collect();
        assert_eq!(
            marks,
            vec![
                Some(4),
                None,
                None,
                None,
                Some(8),
                None,
                None,
                None,
                Some(10),
                None
            ]
        );
        for bl in &b {
            assert!(bl.used <= bl.reserved && bl.reserved <= bl.count);
        }
    }

    #[test]
    fn a_restart_past_the_mark_skips_what_may_have_been_issued() {
        let mut b = vec![block("a", 0, 10)];
        b[0].used = 6;
        b[0].reserved = 6;
        let t = take(&mut b, 3).unwrap();
        assert_eq!(t.index, 6);
        assert_eq!(t.new_mark, Some(9));
    }
}
