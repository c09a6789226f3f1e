//! Anti-diagonal (wavefront) ordering of the cells of a batch of equally sized grids.
//!
//! Cells on one anti-diagonal d = i + j depend only on diagonal d − 1, so the recurrence runs
//! diagonal by diagonal with one GEMM per diagonal. Rows are stored diagonal-major, then by grid
//! row i, then by batch element b:
//!
//!   row(b, i, j) = offset[i + j] + (i − i_lo(i + j)) · B + b
//!
//! With this order the left neighbours (i, j−1) and the upper neighbours (i−1, j) of all cells
//! of a diagonal are each one contiguous block of rows of the previous diagonal.

/// A contiguous block copy between diagonals: `count` rows starting at `dst` read `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub dst: usize,
    pub src: usize,
    pub count: usize,
}

#[derive(Clone, Debug)]
pub struct Wavefront {
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
    /// offset[d] = first row of diagonal d; offset[ndiag] = total rows.
    offset: Vec<usize>,
}

impl Wavefront {
    pub fn new(batch: usize, rows: usize, cols: usize) -> Self {
        let ndiag = if rows == 0 || cols == 0 {
            0
        } else {
            rows + cols - 1
        };
        let mut offset = Vec::with_capacity(ndiag + 1);
        let mut acc = 0;
        offset.push(0);
        for d in 0..ndiag {
            let n = d.min(rows - 1) + 1 - d.saturating_sub(cols - 1);
            acc += n * batch;
            offset.push(acc);
        }
        Self {
            batch,
            rows,
            cols,
            offset,
        }
    }

    pub fn ndiag(&self) -> usize {
        self.offset.len() - 1
    }

    pub fn total_rows(&self) -> usize {
        self.offset[self.ndiag()]
    }

    #[inline]
    pub fn i_lo(&self, d: usize) -> usize {
        d.saturating_sub(self.cols - 1)
    }

    #[inline]
    pub fn i_hi(&self, d: usize) -> usize {
        d.min(self.rows - 1)
    }

    /// Rows of diagonal d.
    #[inline]
    pub fn diag(&self, d: usize) -> std::ops::Range<usize> {
        self.offset[d]..self.offset[d + 1]
    }

    /// Largest number of rows on one diagonal.
    pub fn max_diag_rows(&self) -> usize {
        (0..self.ndiag())
            .map(|d| self.diag(d).len())
            .max()
            .unwrap_or(0)
    }

    #[inline]
    pub fn row(&self, b: usize, i: usize, j: usize) -> usize {
        let d = i + j;
        self.offset[d] + (i - self.i_lo(d)) * self.batch + b
    }

    /// Cells of diagonal d ≥ 1 that have a left neighbour, and where it is on diagonal d − 1.
    pub fn left_link(&self, d: usize) -> Option<Link> {
        let i0 = self.i_lo(d);
        let i1 = self.i_hi(d).min(d.checked_sub(1)?);
        (i0 <= i1).then(|| Link {
            dst: self.row(0, i0, d - i0),
            src: self.row(0, i0, d - 1 - i0),
            count: (i1 - i0 + 1) * self.batch,
        })
    }

    /// Cells of diagonal d ≥ 1 that have an upper neighbour, and where it is on diagonal d − 1.
    pub fn up_link(&self, d: usize) -> Option<Link> {
        if d == 0 {
            return None;
        }
        let i0 = self.i_lo(d).max(1);
        let i1 = self.i_hi(d);
        (i0 <= i1).then(|| Link {
            dst: self.row(0, i0, d - i0),
            src: self.row(0, i0 - 1, d - i0),
            count: (i1 - i0 + 1) * self.batch,
        })
    }

    /// Permutes raster-ordered data `[b][i][j][width]` into wavefront order.
    pub fn to_wavefront<T: Copy + Default>(&self, raster: &[T], width: usize) -> Vec<T> {
        let mut out = vec![T::default(); raster.len()];
        let (r, c) = (self.rows, self.cols);
        for b in 0..self.batch {
            for i in 0..r {
                for j in 0..c {
                    let src = ((b * r + i) * c + j) * width;
                    let dst = self.row(b, i, j) * width;
                    out[dst..dst + width].copy_from_slice(&raster[src..src + width]);
                }
            }
        }
        out
    }

    /// Inverse of [`Self::to_wavefront`].
    pub fn to_raster<T: Copy + Default>(&self, wave: &[T], width: usize) -> Vec<T> {
        let mut out = vec![T::default(); wave.len()];
        let (r, c) = (self.rows, self.cols);
        for b in 0..self.batch {
            for i in 0..r {
                for j in 0..c {
                    let dst = ((b * r + i) * c + j) * width;
                    let src = self.row(b, i, j) * width;
                    out[dst..dst + width].copy_from_slice(&wave[src..src + width]);
                }
            }
        }
        out
    }
}
