//! Rollups of one SLO instance: good and total per time bucket, over a window
//! of buckets that covers the SLO's horizon (its period or longest alert
//! window).
//!
//! Sums over any window are exact (plain additions of the stored counts) and
//! cheap whatever the window's length: buckets are grouped in blocks of
//! [`BLOCK`] whose sums are kept, so a 30-day window of minute buckets adds
//! about 720 block sums and at most 2 × 60 buckets instead of 43,200.
//!
//! Blocks are allocated as data arrives and freed when they hold nothing or
//! fall out of the horizon: an SLO grouped by a key with many values holds
//! memory for the buckets its groups actually saw, not a full period's ring
//! per group (a 30-day ring of minute buckets is 675 KiB; one block is
//! under 1 KiB). [`Rollup::bytes`] says what an instance holds, so the engine
//! can account its SLOs against the process's memory budget.
//!
//! Budget exclusions ([`crate::exclusion`]) are a mask over the buckets
//! ([`Excluded`]): an excluded bucket keeps its raw counts ([`Rollup::buckets`])
//! but adds nothing to any sum, so changing the mask recomputes every figure
//! exactly without reading the buckets again.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::Budgeting;

/// Buckets per block.
pub const BLOCK: usize = 60;

/// `BLOCK` as a bucket index offset.
const BLOCK_I: i64 = BLOCK as i64;

/// The buckets of one block and their sum in budget units.
#[derive(Debug, Clone)]
struct Block {
    raw: [[f64; 2]; BLOCK],
    /// Bit `o` set: bucket `o` is excluded (counts nothing).
    mask: u64,
    /// The sum of the buckets not excluded.
    units: [f64; 2],
}

impl Block {
    const EMPTY: Block = Block {
        raw: [[0.0; 2]; BLOCK],
        mask: 0,
        units: [0.0; 2],
    };

    fn is_empty(&self) -> bool {
        self.raw.iter().all(|v| *v == [0.0; 2])
    }

    fn counts(&self, offset: usize) -> bool {
        self.mask >> offset & 1 == 0
    }

    fn recompute(&mut self, budgeting: &Budgeting) {
        let mut sum = [0.0; 2];
        for (o, raw) in self.raw.iter().enumerate() {
            if self.counts(o) {
                let [g, t] = budgeting.units(raw[0], raw[1]);
                sum[0] += g;
                sum[1] += t;
            }
        }
        self.units = sum;
    }
}

/// Buckets whose events do not count (budget exclusions): sorted, disjoint
/// ranges of bucket indices, both ends included. Cheap to clone (shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excluded(Arc<[(i64, i64)]>);

impl Excluded {
    /// The buckets of `ranges` (inclusive, in any order, overlapping or not).
    pub fn new(mut ranges: Vec<(i64, i64)>) -> Self {
        ranges.retain(|(lo, hi)| lo <= hi);
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Self(merged.into())
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.0
    }

    /// Whether no bucket is excluded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether bucket `index` is excluded.
    pub fn contains(&self, index: i64) -> bool {
        let at = self.0.partition_point(|&(_, hi)| hi < index);
        self.0.get(at).is_some_and(|&(lo, _)| lo <= index)
    }

    /// The mask of block `block_no`.
    fn mask(&self, block_no: i64) -> u64 {
        let start = block_no * BLOCK_I;
        let end = start.saturating_add(BLOCK_I - 1);
        let mut mask = 0u64;
        let first = self.0.partition_point(|&(_, hi)| hi < start);
        for &(lo, hi) in &self.0[first..] {
            if lo > end {
                break;
            }
            for o in lo.max(start) - start..=hi.min(end) - start {
                mask |= 1 << o;
            }
        }
        mask
    }
}

/// Good and total of one SLO instance per bucket.
#[derive(Debug, Clone)]
pub struct Rollup {
    budgeting: Budgeting,
    /// Buckets held: `head - capacity + 1 ..= head` (a multiple of `BLOCK`).
    capacity: usize,
    /// The newest bucket index the rollup has reached (absolute: time / width).
    head: i64,
    /// The blocks holding a non-zero bucket, by absolute block number
    /// (`index.div_euclid(BLOCK)`); no bucket outside the window is kept.
    blocks: BTreeMap<i64, Box<Block>>,
    /// The buckets that count nothing.
    excluded: Excluded,
}

/// Good and total over a window, in budget units (events or slices).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Good events (or slices).
    pub good: f64,
    /// All events (or slices).
    pub total: f64,
}

impl Counts {
    /// Bad events (or slices).
    pub fn bad(&self) -> f64 {
        (self.total - self.good).max(0.0)
    }

    /// good / total, `None` without events.
    pub fn ratio(&self) -> Option<f64> {
        (self.total > 0.0).then(|| self.good / self.total)
    }
}

impl Rollup {
    /// An empty rollup of at least `buckets` buckets, its head at `head`.
    /// Nothing is allocated until a bucket is written.
    pub fn new(budgeting: Budgeting, buckets: usize, head: i64) -> Self {
        let capacity = buckets.max(1).div_ceil(BLOCK).saturating_mul(BLOCK);
        Self {
            budgeting,
            capacity,
            head,
            blocks: BTreeMap::new(),
            excluded: Excluded::default(),
        }
    }

    /// This rollup with `excluded` masked.
    #[must_use]
    pub fn excluding(mut self, excluded: Excluded) -> Self {
        self.set_excluded(excluded);
        self
    }

    /// Masks `excluded` (instead of the buckets masked so far): the sums of
    /// the blocks whose mask changed are recomputed.
    pub fn set_excluded(&mut self, excluded: Excluded) {
        if excluded == self.excluded {
            return;
        }
        for (&block_no, block) in &mut self.blocks {
            let mask = excluded.mask(block_no);
            if mask != block.mask {
                block.mask = mask;
                block.recompute(&self.budgeting);
            }
        }
        self.excluded = excluded;
    }

    /// The buckets masked.
    pub fn excluded(&self) -> &Excluded {
        &self.excluded
    }

    /// The newest bucket index reached.
    pub fn head(&self) -> i64 {
        self.head
    }

    /// The oldest bucket index still held.
    pub fn oldest(&self) -> i64 {
        let capacity = i64::try_from(self.capacity).unwrap_or(i64::MAX);
        self.head.saturating_sub(capacity - 1)
    }

    /// Bytes the allocated blocks take (approximately: the map's own nodes
    /// are counted as one pointer per block).
    pub fn bytes(&self) -> usize {
        self.blocks.len() * (std::mem::size_of::<Block>() + 3 * std::mem::size_of::<usize>())
    }

    /// Moves the head forward to `index`, forgetting the buckets that fall out.
    pub fn advance(&mut self, index: i64) {
        if index <= self.head {
            return;
        }
        self.head = index;
        let oldest = self.oldest();
        let first_kept = oldest.div_euclid(BLOCK_I);
        // Whole blocks older than the window go at once.
        self.blocks = self.blocks.split_off(&first_kept);
        // The block the window now starts in loses its older buckets.
        if let Some(block) = self.blocks.get_mut(&first_kept) {
            let start = first_kept * BLOCK_I;
            let cut = usize::try_from(oldest - start).unwrap_or(0).min(BLOCK);
            if cut > 0 {
                block.raw[..cut].fill([0.0; 2]);
                if block.is_empty() {
                    self.blocks.remove(&first_kept);
                } else {
                    block.recompute(&self.budgeting);
                }
            }
        }
    }

    /// Good and total of a bucket as sums count them: zero outside the
    /// window and for an excluded bucket.
    pub fn get(&self, index: i64) -> [f64; 2] {
        if index > self.head || index < self.oldest() {
            return [0.0; 2];
        }
        let offset = index.rem_euclid(BLOCK_I) as usize;
        self.blocks
            .get(&index.div_euclid(BLOCK_I))
            .filter(|b| b.counts(offset))
            .map_or([0.0; 2], |b| b.raw[offset])
    }

    /// Replaces the buckets `from..=to` with `values` (absent ones become
    /// zero). Buckets older than the window are ignored; the head moves to
    /// `to` if it is newer. Returns whether anything changed.
    pub fn replace(&mut self, from: i64, to: i64, values: &[(i64, [f64; 2])]) -> bool {
        self.advance(to);
        let from = from.max(self.oldest());
        if from > to {
            return false;
        }
        let mut changed = false;
        let mut touched: Vec<i64> = Vec::new();
        let mut given = values.iter().filter(|(i, _)| (from..=to).contains(i));
        let mut next = given.next();
        let mut block_no = from.div_euclid(BLOCK_I);
        while block_no <= to.div_euclid(BLOCK_I) {
            let start = block_no * BLOCK_I;
            let (lo, hi) = (from.max(start), to.min(start.saturating_add(BLOCK_I - 1)));
            // Values for this block, in order.
            let mut here: Vec<(usize, [f64; 2])> = Vec::new();
            while let Some(&(i, v)) = next {
                if i > hi {
                    break;
                }
                if v != [0.0; 2] {
                    here.push(((i - start) as usize, v));
                }
                next = given.next();
            }
            let block = match self.blocks.get_mut(&block_no) {
                Some(block) => Some(block),
                None if here.is_empty() => None,
                None => {
                    let mask = self.excluded.mask(block_no);
                    Some(self.blocks.entry(block_no).or_insert_with(|| {
                        Box::new(Block {
                            mask,
                            ..Block::EMPTY
                        })
                    }))
                }
            };
            if let Some(block) = block {
                let mut values = here.into_iter().peekable();
                let mut dirty = false;
                for offset in (lo - start) as usize..=(hi - start) as usize {
                    let value = match values.peek() {
                        Some(&(o, v)) if o == offset => {
                            values.next();
                            v
                        }
                        _ => [0.0; 2],
                    };
                    if block.raw[offset] != value {
                        block.raw[offset] = value;
                        dirty = true;
                    }
                }
                if dirty {
                    changed = true;
                    touched.push(block_no);
                }
            }
            block_no += 1;
        }
        for block_no in touched {
            if let Some(block) = self.blocks.get_mut(&block_no) {
                if block.is_empty() {
                    self.blocks.remove(&block_no);
                } else {
                    block.recompute(&self.budgeting);
                }
            }
        }
        changed
    }

    /// Units over the buckets `from..=to` (clamped to the window).
    pub fn sum(&self, from: i64, to: i64) -> Counts {
        let from = from.max(self.oldest());
        let to = to.min(self.head);
        let mut sum = [0.0; 2];
        if from > to {
            return Counts::default();
        }
        for (&block_no, block) in self
            .blocks
            .range(from.div_euclid(BLOCK_I)..=to.div_euclid(BLOCK_I))
        {
            let start = block_no * BLOCK_I;
            let (lo, hi) = (from.max(start), to.min(start.saturating_add(BLOCK_I - 1)));
            if lo == start && hi == start.saturating_add(BLOCK_I - 1) {
                sum[0] += block.units[0];
                sum[1] += block.units[1];
            } else {
                for o in (lo - start) as usize..=(hi - start) as usize {
                    if block.counts(o) {
                        let [g, t] = self.budgeting.units(block.raw[o][0], block.raw[o][1]);
                        sum[0] += g;
                        sum[1] += t;
                    }
                }
            }
        }
        Counts {
            good: sum[0],
            total: sum[1],
        }
    }

    /// The first bucket at or after `from` that counts something, if any:
    /// one lookup in the block index, not a walk over the older buckets.
    pub fn first_from(&self, from: i64) -> Option<i64> {
        let from = from.max(self.oldest());
        self.blocks
            .range(from.div_euclid(BLOCK_I)..)
            .find_map(|(&block_no, block)| {
                let start = block_no * BLOCK_I;
                (from.max(start) - start..BLOCK_I)
                    .find(|&o| block.raw[o as usize] != [0.0; 2] && block.counts(o as usize))
                    .map(|o| start + o)
            })
            .filter(|&i| i <= self.head)
    }

    /// Every non-empty bucket with its raw counts, excluded or not, oldest
    /// first.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, [f64; 2])> + '_ {
        let (oldest, head) = (self.oldest(), self.head);
        self.blocks.iter().flat_map(move |(&block_no, block)| {
            let start = block_no * BLOCK_I;
            block
                .raw
                .iter()
                .enumerate()
                .map(move |(offset, v)| (start + offset as i64, *v))
                .filter(move |(i, v)| (oldest..=head).contains(i) && *v != [0.0; 2])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(buckets: usize) -> Rollup {
        Rollup::new(Budgeting::Occurrences, buckets, 0)
    }

    #[test]
    fn sums_match_plain_addition_across_blocks() {
        let mut r = occ(300);
        let values: Vec<(i64, [f64; 2])> = (0..250)
            .map(|i| (i, [f64::from(i as u32 % 7), f64::from(i as u32 % 11)]))
            .collect();
        r.replace(0, 249, &values);
        for (from, to) in [(0, 249), (5, 61), (60, 119), (59, 180), (130, 130)] {
            let expect = values[from as usize..=to as usize]
                .iter()
                .fold([0.0; 2], |a, (_, v)| [a[0] + v[0], a[1] + v[1]]);
            let got = r.sum(from, to);
            assert_eq!([got.good, got.total], expect, "{from}..={to}");
        }
    }

    #[test]
    fn advancing_the_head_forgets_old_buckets() {
        let mut r = occ(120);
        r.replace(0, 0, &[(0, [1.0, 1.0])]);
        r.replace(100, 100, &[(100, [2.0, 2.0])]);
        assert_eq!(r.sum(0, 100).total, 3.0);
        r.replace(125, 125, &[(125, [4.0, 4.0])]);
        assert_eq!(r.get(0), [0.0; 2], "bucket 0 fell out of the ring");
        assert_eq!(r.sum(-1000, 1000).total, 6.0);
        r.advance(10_000);
        assert_eq!(r.sum(-1000, 20_000).total, 0.0);
    }

    #[test]
    fn replace_zeroes_buckets_not_given() {
        let mut r = occ(60);
        r.replace(0, 9, &[(3, [1.0, 2.0]), (4, [1.0, 1.0])]);
        r.replace(3, 9, &[(5, [0.0, 1.0])]);
        assert_eq!(
            r.sum(0, 9),
            Counts {
                good: 0.0,
                total: 1.0
            }
        );
        assert!(!r.replace(3, 9, &[(5, [0.0, 1.0])]), "nothing changed");
    }

    #[test]
    fn memory_is_held_only_for_blocks_with_data() {
        // A 30-day window of minute buckets: nothing allocated up front.
        let mut r = occ(43_200);
        assert_eq!(r.bytes(), 0);
        r.replace(0, 0, &[(0, [1.0, 1.0])]);
        let one_block = r.bytes();
        assert!(one_block > 0 && one_block < 2048, "{one_block}");
        // Writing zeros over the only bucket frees its block.
        r.replace(0, 0, &[]);
        assert_eq!(r.bytes(), 0);
        // Data far apart hold two blocks, not the ring between them.
        r.replace(10, 10, &[(10, [1.0, 1.0])]);
        r.replace(40_000, 40_000, &[(40_000, [1.0, 2.0])]);
        assert_eq!(r.bytes(), 2 * one_block);
        assert_eq!(r.sum(0, 40_000).total, 3.0);
        // Moving past the window frees everything.
        r.advance(200_000);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn the_block_the_window_starts_in_keeps_only_its_newer_buckets() {
        let mut r = occ(120);
        let values: Vec<(i64, [f64; 2])> = (0..120).map(|i| (i, [1.0, 1.0])).collect();
        r.replace(0, 119, &values);
        r.advance(130);
        assert_eq!(r.oldest(), 11);
        assert_eq!(r.sum(-100, 200).total, 109.0, "buckets 11..=119");
        assert_eq!(r.buckets().count(), 109);
        assert_eq!(r.get(10), [0.0; 2]);
        assert_eq!(r.get(11), [1.0; 2]);
    }

    #[test]
    fn the_first_bucket_with_data_is_found_from_any_start() {
        let mut r = occ(600);
        r.replace(
            0,
            400,
            &[(7, [1.0, 1.0]), (130, [0.0, 2.0]), (131, [1.0, 1.0])],
        );
        assert_eq!(r.first_from(-5), Some(7));
        assert_eq!(r.first_from(7), Some(7));
        assert_eq!(r.first_from(8), Some(130));
        assert_eq!(r.first_from(131), Some(131));
        assert_eq!(r.first_from(132), None);
        for from in -5..140 {
            assert_eq!(
                r.first_from(from),
                r.buckets().map(|(i, _)| i).find(|&i| i >= from),
                "from {from}"
            );
        }
    }

    #[test]
    fn excluded_buckets_count_nothing_and_unmasking_restores_the_sums() {
        let mut r = occ(600);
        let values: Vec<(i64, [f64; 2])> = (0..300).map(|i| (i, [1.0, 2.0])).collect();
        r.replace(0, 299, &values);
        let all = r.sum(0, 299);
        // Buckets 50..=169 (two whole blocks' worth across three blocks)
        // and 200.
        r.set_excluded(Excluded::new(vec![(200, 200), (50, 169)]));
        assert_eq!(r.sum(0, 299).total, all.total - 2.0 * 121.0);
        assert_eq!(r.sum(55, 65).total, 0.0, "a partial block inside the mask");
        assert_eq!(r.sum(45, 55).total, 10.0, "buckets 45..=49 count");
        assert_eq!(r.get(60), [0.0; 2]);
        assert_eq!(r.buckets().count(), 300, "raw buckets stay");
        assert_eq!(r.first_from(50), Some(170));
        // Buckets written into an excluded range stay masked, new blocks too.
        r.set_excluded(Excluded::new(vec![(50, 169), (200, 200), (400, 459)]));
        r.replace(400, 410, &[(405, [3.0, 3.0])]);
        assert_eq!(r.sum(400, 459).total, 0.0);
        r.set_excluded(Excluded::default());
        assert_eq!(r.sum(0, 299), all);
        assert_eq!(r.sum(400, 459).total, 3.0);
    }

    #[test]
    fn excluded_ranges_are_merged_and_looked_up() {
        let e = Excluded::new(vec![(10, 12), (5, 9), (20, 30), (25, 26), (40, 39)]);
        assert_eq!(e.ranges(), &[(5, 12), (20, 30)]);
        for i in 0..40 {
            assert_eq!(
                e.contains(i),
                (5..=12).contains(&i) || (20..=30).contains(&i),
                "{i}"
            );
        }
        assert_eq!(
            e.mask(0),
            ((1u64 << 13) - 1) & !((1u64 << 5) - 1) | ((1u64 << 31) - 1) & !((1u64 << 20) - 1)
        );
    }

    #[test]
    fn huge_windows_do_not_overflow() {
        let mut r = occ(usize::MAX);
        r.replace(i64::MAX - 5, i64::MAX - 5, &[(i64::MAX - 5, [1.0, 1.0])]);
        assert_eq!(r.sum(i64::MIN, i64::MAX).total, 1.0);
    }
}
