//! The coder's view of one cell: the model's CDF at the 257 bin edges of the 8-bit values,
//! quantised to integers the range coder shares between encoder and decoder.
//!
//! G(k) = P(y < k/s | context) is the model's CDF at the lower edge of value k's bin
//! [k/s, (k+1)/s) (model units, s = 255; outer bins open, as in `tasks::discrete`), through the
//! whitening's affine map and the mixture ([`CellCdf`]). It is quantised as
//!
//! Q(0) = 0,  Q(k) = ⌊G(k)·(2²⁴ − 512)⌋ + 2k (0 < k < 256),  Q(256) = 2²⁴,
//!
//! so every value keeps a frequency Q(k+1) − Q(k) ≥ 2 (≤ 23 bits) and stays ≥ 1 even if
//! rounding made G decrease by less than one step somewhere. Each Q(k) is a function of k and
//! the cell alone: the encoder needs Q(x), Q(x+1); the decoder finds x by bisection over k,
//! evaluating the same function, so both sides compute bit-identical frequencies.

use crate::model::mcgsm::CellCdf;
use crate::model::whitening::Whitening;
use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};
use std::cell::RefCell;
use std::num::NonZeroU32;

/// Bits of the coder's probabilities (constriction's default range coder: 32-bit words,
/// 64-bit state, 24-bit precision).
pub const PRECISION: usize = 24;

/// Values of an 8-bit image.
pub const LEVELS: usize = 256;

const TOTAL: u32 = 1 << PRECISION;
const SPREAD: f64 = (TOTAL - 2 * LEVELS as u32) as f64;
const UNSET: u32 = u32::MAX;

/// Q(k) of one cell, evaluated lazily and remembered (the decoder's bisection and the encoder
/// share evaluations this way).
pub struct QuantizedCdf<'a> {
    cdf: &'a CellCdf,
    wh: &'a Whitening,
    xw: &'a [f64],
    scale: f64,
    memo: RefCell<[u32; LEVELS + 1]>,
}

impl<'a> QuantizedCdf<'a> {
    /// The cell whose whitened inputs are `xw` and whose mixture is `cdf`; values are
    /// `k / scale` in model units.
    pub fn new(cdf: &'a CellCdf, wh: &'a Whitening, xw: &'a [f64], scale: f64) -> Self {
        Self {
            cdf,
            wh,
            xw,
            scale,
            memo: RefCell::new([UNSET; LEVELS + 1]),
        }
    }

    /// G(k) = P(y < k/s) for 0 < k < 256.
    fn model_cdf(&self, k: usize) -> f64 {
        let t = self.wh.whiten_output(self.xw, k as f64 / self.scale);
        let g = self.cdf.cdf(t);
        // a negative output scale reverses the order of ỹ and y
        let g = if self.wh.white_out() > 0.0 {
            g
        } else {
            1.0 - g
        };
        g.clamp(0.0, 1.0)
    }

    /// Q(k), 0 ≤ k ≤ 256.
    pub fn q(&self, k: usize) -> u32 {
        if k == 0 {
            return 0;
        }
        if k >= LEVELS {
            return TOTAL;
        }
        let cached = self.memo.borrow()[k];
        if cached != UNSET {
            return cached;
        }
        let v = (self.model_cdf(k) * SPREAD).floor() as u32 + 2 * k as u32;
        self.memo.borrow_mut()[k] = v;
        v
    }

    /// G(k) with G(0) = 0 and G(256) = 1.
    fn edge(&self, k: usize) -> f64 {
        match k {
            0 => 0.0,
            LEVELS.. => 1.0,
            k => self.model_cdf(k),
        }
    }

    /// The discrete likelihood of value k as `ride eval --discrete` defines it (the model's
    /// mass on k's bin with the floor [`crate::tasks::discrete::FLOOR`]), in floating point:
    /// what the coded size is compared with.
    pub fn discrete_probability(&self, k: usize) -> f64 {
        use crate::tasks::discrete::FLOOR;
        let p = (self.edge(k + 1) - self.edge(k)).clamp(0.0, 1.0);
        (1.0 - LEVELS as f64 * FLOOR) * p + FLOOR
    }

    /// Probability of value k as the coder codes it (frequency / 2²⁴).
    pub fn probability(&self, k: usize) -> f64 {
        (self.q(k + 1).saturating_sub(self.q(k))) as f64 / TOTAL as f64
    }

    /// The entropy model of this cell for constriction's coders.
    pub fn model(&self) -> BinModel<'_, 'a> {
        BinModel(self)
    }
}

/// [`QuantizedCdf`] as constriction's encoder and decoder model (symbols 0…255).
#[derive(Clone, Copy)]
pub struct BinModel<'q, 'a>(&'q QuantizedCdf<'a>);

impl EntropyModel<PRECISION> for BinModel<'_, '_> {
    type Symbol = usize;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for BinModel<'_, '_> {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl std::borrow::Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let k = *symbol.borrow();
        if k >= LEVELS {
            return None;
        }
        let (lo, hi) = (self.0.q(k), self.0.q(k + 1));
        Some((lo, NonZeroU32::new(hi.checked_sub(lo)?)?))
    }
}

impl DecoderModel<PRECISION> for BinModel<'_, '_> {
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        // the largest k with Q(k) ≤ quantile: Q(0) = 0 ≤ quantile < 2²⁴ = Q(256)
        let (mut lo, mut hi) = (0usize, LEVELS);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.0.q(mid) <= quantile {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let left = self.0.q(lo);
        // ≥ 1 for every cell (module docs); 1 only guards a corrupt stream against a panic
        let p = self.0.q(lo + 1).saturating_sub(left).max(1);
        (lo, left, NonZeroU32::new(p).unwrap_or(NonZeroU32::MIN))
    }
}
