//! Rollups of one SLO instance: good and total per time bucket, over a ring
//! that covers the SLO's horizon (its period or longest alert window).
//!
//! Sums over any window are exact (plain additions of the stored counts) and
//! cheap whatever the window's length: buckets are grouped in blocks of
//! [`BLOCK`] whose sums are kept, so a 30-day window of minute buckets adds
//! about 720 block sums and at most 2 × 60 buckets instead of 43,200.

use crate::model::Budgeting;

/// Buckets per block.
pub const BLOCK: usize = 60;

/// Good and total of one SLO instance per bucket.
#[derive(Debug, Clone)]
pub struct Rollup {
    budgeting: Budgeting,
    /// Buckets the ring holds (a multiple of `BLOCK`).
    capacity: usize,
    /// The newest bucket index the ring has reached (absolute: time / width).
    head: i64,
    /// Raw good and total per bucket, at `index mod capacity`.
    raw: Vec<[f64; 2]>,
    /// Per block, the sum of the buckets' units (see [`Budgeting::units`]).
    blocks: Vec<[f64; 2]>,
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
    /// An empty ring of at least `buckets` buckets, starting at bucket `head`.
    pub fn new(budgeting: Budgeting, buckets: usize, head: i64) -> Self {
        let capacity = buckets.max(1).div_ceil(BLOCK) * BLOCK;
        Self {
            budgeting,
            capacity,
            head,
            raw: vec![[0.0; 2]; capacity],
            blocks: vec![[0.0; 2]; capacity / BLOCK],
        }
    }

    /// The newest bucket index reached.
    pub fn head(&self) -> i64 {
        self.head
    }

    /// The oldest bucket index still held.
    pub fn oldest(&self) -> i64 {
        self.head - self.capacity as i64 + 1
    }

    fn slot(&self, index: i64) -> usize {
        index.rem_euclid(self.capacity as i64) as usize
    }

    /// Moves the head forward to `index`, clearing the buckets that fall out.
    pub fn advance(&mut self, index: i64) {
        if index <= self.head {
            return;
        }
        let cap = self.capacity as i64;
        if index - self.head >= cap {
            self.raw.fill([0.0; 2]);
            self.blocks.fill([0.0; 2]);
        } else {
            let mut touched = Vec::new();
            for i in self.head + 1..=index {
                let slot = self.slot(i);
                self.raw[slot] = [0.0; 2];
                if touched.last() != Some(&(slot / BLOCK)) {
                    touched.push(slot / BLOCK);
                }
            }
            for block in touched {
                self.recompute_block(block);
            }
        }
        self.head = index;
    }

    /// Raw good and total of a bucket (zero outside the ring).
    pub fn get(&self, index: i64) -> [f64; 2] {
        if index > self.head || index < self.oldest() {
            return [0.0; 2];
        }
        self.raw[self.slot(index)]
    }

    /// Replaces the buckets `from..=to` with `values` (absent ones become
    /// zero). Buckets older than the ring are ignored; the head moves to `to`
    /// if it is newer. Returns whether anything changed.
    pub fn replace(&mut self, from: i64, to: i64, values: &[(i64, [f64; 2])]) -> bool {
        self.advance(to);
        let from = from.max(self.oldest());
        if from > to {
            return false;
        }
        let mut changed = false;
        let mut touched: Vec<usize> = Vec::new();
        let mut write = |this: &mut Self, index: i64, value: [f64; 2]| {
            let slot = this.slot(index);
            if this.raw[slot] != value {
                this.raw[slot] = value;
                changed = true;
                if touched.last() != Some(&(slot / BLOCK)) {
                    touched.push(slot / BLOCK);
                }
            }
        };
        let mut given = values.iter().filter(|(i, _)| (from..=to).contains(i));
        let mut next = given.next();
        for index in from..=to {
            let value = match next {
                Some(&(i, v)) if i == index => {
                    next = given.next();
                    v
                }
                _ => [0.0; 2],
            };
            write(self, index, value);
        }
        touched.sort_unstable();
        touched.dedup();
        for block in touched {
            self.recompute_block(block);
        }
        changed
    }

    fn recompute_block(&mut self, block: usize) {
        let mut sum = [0.0; 2];
        for raw in &self.raw[block * BLOCK..(block + 1) * BLOCK] {
            let [g, t] = self.budgeting.units(raw[0], raw[1]);
            sum[0] += g;
            sum[1] += t;
        }
        self.blocks[block] = sum;
    }

    /// Units over the buckets `from..=to` (clamped to the ring).
    pub fn sum(&self, from: i64, to: i64) -> Counts {
        let from = from.max(self.oldest());
        let to = to.min(self.head);
        let mut sum = [0.0; 2];
        let mut add = |u: [f64; 2]| {
            sum[0] += u[0];
            sum[1] += u[1];
        };
        let mut i = from;
        while i <= to {
            let block_start = i - i.rem_euclid(BLOCK as i64);
            let block_end = block_start + BLOCK as i64 - 1;
            if i == block_start && block_end <= to {
                add(self.blocks[self.slot(i) / BLOCK]);
                i = block_end + 1;
            } else {
                let [g, t] = self.raw[self.slot(i)];
                add(self.budgeting.units(g, t));
                i += 1;
            }
        }
        Counts {
            good: sum[0],
            total: sum[1],
        }
    }

    /// Every non-empty bucket, oldest first.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, [f64; 2])> + '_ {
        (self.oldest()..=self.head)
            .map(|i| (i, self.get(i)))
            .filter(|(_, v)| v[0] != 0.0 || v[1] != 0.0)
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
}
