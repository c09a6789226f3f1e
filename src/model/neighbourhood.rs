//! Causal neighbourhoods (docs/MODEL.md §1): masks and the extraction of input/output grids from images.

use anyhow::{bail, Result};

/// A causal neighbourhood: which pixels of a `rows × cols` window are inputs, which one is the
/// predicted output. Inputs are read row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbourhood {
    pub rows: usize,
    pub cols: usize,
    pub input: Vec<bool>,
    pub output: Vec<bool>,
}

impl Neighbourhood {
    /// The standard mask for odd `nb_size`: (n+1)/2 rows × n columns, all pixels of the first
    /// (n−1)/2 rows plus the (n−1)/2 pixels left of centre in the last row; output at the centre.
    pub fn causal(nb_size: usize) -> Result<Self> {
        if nb_size < 3 || nb_size.is_multiple_of(2) {
            bail!("nb_size must be an odd number ≥ 3, got {nb_size}");
        }
        let rows = nb_size.div_ceil(2);
        let cols = nb_size;
        let half = (nb_size - 1) / 2;
        let mut input = vec![false; rows * cols];
        let mut output = vec![false; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                input[r * cols + c] = r < rows - 1 || c < half;
            }
        }
        output[(rows - 1) * cols + half] = true;
        Self::from_masks(rows, cols, input, output)
    }

    /// Arbitrary boolean masks (row-major `rows × cols`). Exactly one output pixel (1-D MCGSM),
    /// disjoint from the inputs.
    pub fn from_masks(
        rows: usize,
        cols: usize,
        input: Vec<bool>,
        output: Vec<bool>,
    ) -> Result<Self> {
        if input.len() != rows * cols || output.len() != rows * cols {
            bail!("mask size does not match {rows}×{cols}");
        }
        let n_out = output.iter().filter(|&&b| b).count();
        if n_out != 1 {
            bail!("output mask must select exactly one pixel, it selects {n_out}");
        }
        if input.iter().zip(&output).any(|(&i, &o)| i && o) {
            bail!("input and output masks overlap");
        }
        if !input.iter().any(|&b| b) {
            bail!("input mask selects no pixel");
        }
        Ok(Self {
            rows,
            cols,
            input,
            output,
        })
    }

    /// Number of inputs N.
    pub fn n_inputs(&self) -> usize {
        self.input.iter().filter(|&&b| b).count()
    }

    /// (row, col) of the output pixel within the window.
    pub fn output_pos(&self) -> (usize, usize) {
        let k = self.output.iter().position(|&b| b).unwrap_or(0);
        (k / self.cols, k % self.cols)
    }

    /// Offsets (row, col) of the inputs, row-major.
    pub fn input_offsets(&self) -> Vec<(usize, usize)> {
        (0..self.rows * self.cols)
            .filter(|&k| self.input[k])
            .map(|k| (k / self.cols, k % self.cols))
            .collect()
    }

    /// Grid of cells an `h × w` image yields (no padding); `None` if the image is too small.
    pub fn grid(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        (h >= self.rows && w >= self.cols).then(|| (h - self.rows + 1, w - self.cols + 1))
    }

    /// Extracts inputs `[gr·gc, N]` and outputs `[gr·gc]` (cells in raster order) from a
    /// row-major `h × w` image. Cell (r,c) predicts pixel (r + out_row, c + out_col).
    pub fn extract(
        &self,
        img: &[f64],
        h: usize,
        w: usize,
    ) -> Result<(Vec<f64>, Vec<f64>, usize, usize)> {
        let Some((gr, gc)) = self.grid(h, w) else {
            bail!(
                "image {h}×{w} is smaller than the {}×{} neighbourhood",
                self.rows,
                self.cols
            );
        };
        let offs = self.input_offsets();
        let (orow, ocol) = self.output_pos();
        let n = offs.len();
        let mut x = Vec::with_capacity(gr * gc * n);
        let mut y = Vec::with_capacity(gr * gc);
        for r in 0..gr {
            for c in 0..gc {
                for &(dr, dc) in &offs {
                    x.push(img[(r + dr) * w + c + dc]);
                }
                y.push(img[(r + orow) * w + c + ocol]);
            }
        }
        debug_assert_eq!(x.len(), gr * gc * n);
        Ok((x, y, gr, gc))
    }
}
