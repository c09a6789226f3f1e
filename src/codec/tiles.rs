//! Coding the cells of one tile in raster order — the one code path of the encoder and the
//! decoder ([`CellCoder`] says which side runs it).
//!
//! A tile's pixels sit on a canvas of `(h + out_row) × (w + nb_cols − 1)`, so every pixel of the
//! tile is the output of exactly one cell. The canvas's margin shows the pixels of the tiles
//! coded before it — those of earlier tile rows, and of the tile to its left — and the model's
//! pad value elsewhere (outside the image, and right of the tile in its own tile row, which
//! the decoder does not know yet). The SLSTM states start from zero at the tile's edges, as in
//! the evaluation. So tile (r, c) needs tiles (r−1, c−1…c+1) and (r, c−1): the decoder runs the
//! tiles in waves 2r + c, the tiles of a wave in parallel ([`waves`]); the encoder knows every
//! pixel and runs all tiles at once. Both build the canvas with [`CodingModel::canvas`].

use super::cdf::{Alphabet, QuantizedCdf};
use crate::model::mcgsm::{CellCdf, CellMixture};
use crate::model::raster::{CellLayer, RasterStack};
use crate::model::ride::Ride;
use anyhow::{Context, Result};

/// An 8-bit gray image, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gray8 {
    pub h: usize,
    pub w: usize,
    pub pixels: Vec<u8>,
}

/// A rectangle of the image with its own range-coded stream: tile (`tr`, `tc`) of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub tr: usize,
    pub tc: usize,
    pub r0: usize,
    pub c0: usize,
    pub h: usize,
    pub w: usize,
}

/// The tiles of an `h × w` image in raster order: `t × t` squares (smaller at the right and
/// bottom edges), or the whole image for `t = 0`.
pub fn tiles(h: usize, w: usize, t: usize) -> Vec<Tile> {
    let (th, tw) = if t == 0 { (h, w) } else { (t, t) };
    let mut v = vec![];
    for (tr, r0) in (0..h).step_by(th.max(1)).enumerate() {
        for (tc, c0) in (0..w).step_by(tw.max(1)).enumerate() {
            v.push(Tile {
                tr,
                tc,
                r0,
                c0,
                h: th.min(h - r0),
                w: tw.min(w - c0),
            });
        }
    }
    v
}

/// Indices into `tiles` grouped by decoding wave 2r + c: a tile's context tiles all lie in
/// earlier waves.
pub fn waves(tiles: &[Tile]) -> Vec<Vec<usize>> {
    let mut v: Vec<Vec<usize>> = vec![];
    for (k, t) in tiles.iter().enumerate() {
        let wave = 2 * t.tr + t.tc;
        if v.len() <= wave {
            v.resize(wave + 1, vec![]);
        }
        v[wave].push(k);
    }
    v
}

/// What happens at a cell: the encoder codes the known symbol, the decoder reads one.
pub trait CellCoder {
    fn code(&mut self, cell: &QuantizedCdf, known: Option<usize>) -> Result<usize>;
}

/// A model prepared for per-cell coding.
pub struct CodingModel<'m> {
    pub model: &'m Ride<f32>,
    layers: Vec<CellLayer>,
    /// The margin's value (an 8-bit value): the training marginal's mean.
    pub pad: u8,
}

impl<'m> CodingModel<'m> {
    pub fn new(model: &'m Ride<f32>) -> Self {
        let s = model.preprocessing.scale;
        let pad = (model.whitening.mean_out() * s).round().clamp(0.0, 255.0) as u8;
        Self {
            model,
            layers: model.layers.iter().map(CellLayer::new).collect(),
            pad,
        }
    }

    /// Smallest tile side (besides 0, the whole image): a tile's context reaches only into
    /// its neighbouring tiles.
    pub fn min_tile(&self) -> usize {
        self.model.nb.rows.max(self.model.nb.cols)
    }

    /// The canvas of `tile` (`[(h + out_row) · (w + nb_cols − 1)]`, model units): the pixels of
    /// `known` (the whole image's buffer) at the positions of tiles coded before this one
    /// (earlier tile rows, or the same tile row to the left), the pad value elsewhere — the
    /// tile's own pixels included, which the cells write as they are coded.
    pub fn canvas(&self, tile: Tile, t: usize, known: &Gray8) -> Vec<f64> {
        let m = self.model;
        let s = m.preprocessing.scale;
        let (orow, ocol) = m.nb.output_pos();
        let (ch, cw) = (tile.h + orow, tile.w + m.nb.cols - 1);
        let mut canvas = vec![self.pad as f64 / s; ch * cw];
        if t == 0 {
            return canvas;
        }
        for a in 0..ch {
            let Some(r) = (tile.r0 + a).checked_sub(orow).filter(|&r| r < known.h) else {
                continue;
            };
            for b in 0..cw {
                let Some(c) = (tile.c0 + b).checked_sub(ocol).filter(|&c| c < known.w) else {
                    continue;
                };
                let (tr, tc) = (r / t, c / t);
                if tr < tile.tr || (tr == tile.tr && tc < tile.tc) {
                    canvas[a * cw + b] = known.pixels[r * known.w + c] as f64 / s;
                }
            }
        }
        canvas
    }

    /// Runs `coder` over the cells of `tile` (of a grid of side `t`) in raster order, the
    /// symbols those of `alphabet`. `known`
    /// holds the pixels of the tiles coded before it (the decoder's image so far), and the
    /// tile's own pixels when encoding (`encoding`). Returns the tile's pixels
    /// (`[tile.h · tile.w]`).
    #[allow(clippy::too_many_arguments)]
    pub fn run_tile(
        &self,
        tile: Tile,
        t: usize,
        alphabet: &Alphabet,
        known: &Gray8,
        encoding: bool,
        coder: &mut impl CellCoder,
    ) -> Result<Vec<u8>> {
        let m = self.model;
        let s = m.preprocessing.scale;
        let (orow, ocol) = m.nb.output_pos();
        let cw = tile.w + m.nb.cols - 1;
        let mut canvas = self.canvas(tile, t, known);
        let mut out = vec![0u8; tile.h * tile.w];
        let mut stack = RasterStack::new(&self.layers, &m.nb, tile.w);
        let mut mix = CellMixture::new(&m.mcgsm);
        let mut cdf = CellCdf::default();
        for i in 0..tile.h {
            for j in 0..tile.w {
                let (xw, u) = stack.step(&m.whitening, &canvas, cw, (0, 0), (i, j));
                mix.prepare_cdf(u, &mut cdf);
                let cell = QuantizedCdf::new(alphabet, &cdf, &m.whitening, xw, s);
                let symbol = match encoding {
                    true => {
                        let v = known.pixels[(tile.r0 + i) * known.w + tile.c0 + j];
                        Some(alphabet.symbol(v).context("a value outside the alphabet")?)
                    }
                    false => None,
                };
                let v = alphabet.value(coder.code(&cell, symbol)?);
                canvas[(i + orow) * cw + j + ocol] = v as f64 / s;
                out[i * tile.w + j] = v;
            }
            stack.next_row();
        }
        Ok(out)
    }
}
