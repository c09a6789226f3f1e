//! The coder's view of one cell: the model's CDF at the bin edges of the image's values,
//! quantised to integers the range coder shares between encoder and decoder.
//!
//! G(e) = P(y < e/s | context) is the model's CDF at the lower edge of value e's bin
//! [e/s, (e+1)/s) (model units, s = 255; outer bins open, as in `tasks::discrete`), through the
//! whitening's affine map and the mixture ([`CellCdf`]). The symbols are the values the image
//! uses ([`Alphabet`]: all 256, or fewer — scanned plates often use a few dozen gray levels);
//! symbol i (value v_i) owns the bins from the midpoint to its lower neighbour up to the
//! midpoint to its upper one, edges E_0 = 0 < E_1 < … < E_n = 256. Quantised:
//!
//! Q(0) = 0,  Q(i) = ⌊G(E_i)·(2²⁴ − 2n)⌋ + 2i (0 < i < n),  Q(n) = 2²⁴,
//!
//! so every symbol keeps a frequency Q(i+1) − Q(i) ≥ 2 and stays ≥ 1 even if rounding made G
//! decrease by less than one step somewhere. With all 256 values, E_i = i: each value's own bin.
//! Each Q(i) is a function of i and the cell alone: the encoder needs Q(x), Q(x+1); the decoder
//! finds x by searching over i (galloping from the symbol nearest the mixture's mean, then
//! bisection: a few evaluations when the model predicts well), evaluating the same function,
//! so both sides compute bit-identical frequencies; the search's start changes only its cost,
//! not its result.

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
const UNSET: u32 = u32::MAX;

/// The values an image uses and the bin edges each symbol owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alphabet {
    /// The values, increasing: symbol i is `values[i]`.
    values: Vec<u8>,
    /// E_0 = 0 < E_1 < … < E_n = 256 (value units).
    edges: Vec<usize>,
    /// The symbol whose bins hold each value.
    symbol_of: [u16; LEVELS],
}

impl Alphabet {
    /// Every 8-bit value.
    pub fn full() -> Self {
        Self::from_mask(&[true; LEVELS]).unwrap_or_else(|| unreachable!("256 values"))
    }

    /// The values of `pixels`.
    pub fn of_pixels(pixels: &[u8]) -> Option<Self> {
        let mut used = [false; LEVELS];
        for &p in pixels {
            used[p as usize] = true;
        }
        Self::from_mask(&used)
    }

    /// The values marked in `used`; None if there are none.
    pub fn from_mask(used: &[bool; LEVELS]) -> Option<Self> {
        let values: Vec<u8> = (0..LEVELS).filter(|&v| used[v]).map(|v| v as u8).collect();
        if values.is_empty() {
            return None;
        }
        let mut edges = vec![0usize];
        for w in values.windows(2) {
            edges.push((w[0] as usize + w[1] as usize).div_ceil(2));
        }
        edges.push(LEVELS);
        let mut symbol_of = [0u16; LEVELS];
        for i in 0..values.len() {
            symbol_of[edges[i]..edges[i + 1]].fill(i as u16);
        }
        Some(Self {
            values,
            edges,
            symbol_of,
        })
    }

    /// Which values are used (the header stores this as 32 bytes).
    pub fn mask(&self) -> [bool; LEVELS] {
        let mut m = [false; LEVELS];
        for &v in &self.values {
            m[v as usize] = true;
        }
        m
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn value(&self, symbol: usize) -> u8 {
        self.values[symbol]
    }

    /// The symbol of a used value.
    pub fn symbol(&self, value: u8) -> Option<usize> {
        let i = self.symbol_of[value as usize] as usize;
        (self.values[i] == value).then_some(i)
    }
}

/// Q(k) of one cell, evaluated lazily and remembered (the decoder's bisection and the encoder
/// share evaluations this way).
pub struct QuantizedCdf<'a> {
    alphabet: &'a Alphabet,
    cdf: &'a CellCdf,
    wh: &'a Whitening,
    xw: &'a [f64],
    scale: f64,
    memo: RefCell<[u32; LEVELS + 1]>,
}

impl<'a> QuantizedCdf<'a> {
    /// The cell whose whitened inputs are `xw` and whose mixture is `cdf`; values are
    /// `k / scale` in model units.
    pub fn new(
        alphabet: &'a Alphabet,
        cdf: &'a CellCdf,
        wh: &'a Whitening,
        xw: &'a [f64],
        scale: f64,
    ) -> Self {
        Self {
            alphabet,
            cdf,
            wh,
            xw,
            scale,
            memo: RefCell::new([UNSET; LEVELS + 1]),
        }
    }

    /// G(e) = P(y < e/s) for 0 < e < 256.
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

    /// Q(i), 0 ≤ i ≤ n.
    pub fn q(&self, i: usize) -> u32 {
        let n = self.alphabet.len();
        if i == 0 {
            return 0;
        }
        if i >= n {
            return TOTAL;
        }
        let cached = self.memo.borrow()[i];
        if cached != UNSET {
            return cached;
        }
        let spread = (TOTAL - 2 * n as u32) as f64;
        let g = self.model_cdf(self.alphabet.edges[i]);
        let v = (g * spread).floor() as u32 + 2 * i as u32;
        self.memo.borrow_mut()[i] = v;
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

    /// Probability of symbol i as the coder codes it (frequency / 2²⁴).
    pub fn probability(&self, i: usize) -> f64 {
        (self.q(i + 1).saturating_sub(self.q(i))) as f64 / TOTAL as f64
    }

    /// The value of symbol i.
    pub fn value(&self, i: usize) -> u8 {
        self.alphabet.value(i)
    }

    /// The entropy model of this cell for constriction's coders.
    pub fn model(&self) -> BinModel<'_, 'a> {
        BinModel(self)
    }
}

/// [`QuantizedCdf`] as constriction's encoder and decoder model (symbols 0…n−1).
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
        if k >= self.0.alphabet.len() {
            return None;
        }
        let (lo, hi) = (self.0.q(k), self.0.q(k + 1));
        Some((lo, NonZeroU32::new(hi.checked_sub(lo)?)?))
    }
}

impl BinModel<'_, '_> {
    /// The symbol nearest the mixture's mean, where the decoder's search starts.
    fn guess(&self) -> usize {
        let c = self.0;
        let mut yw = c.cdf.mean();
        if !yw.is_finite() {
            yw = 0.0;
        }
        let y = c.wh.unwhiten_output(c.xw, yw) * c.scale;
        let v = if y.is_finite() {
            y.floor().clamp(0.0, (LEVELS - 1) as f64) as usize
        } else {
            LEVELS / 2
        };
        c.alphabet.symbol_of[v] as usize
    }

    /// An interval (lo, hi) with Q(lo) ≤ quantile < Q(hi), galloping out from the guess.
    fn bracket(&self, quantile: u32) -> (usize, usize) {
        let q = |k: usize| self.0.q(k);
        let g = self.guess();
        let n = self.0.alphabet.len();
        let mut step = 1;
        if q(g) <= quantile {
            let mut lo = g;
            loop {
                let hi = (g + step).min(n);
                if q(hi) > quantile {
                    return (lo, hi);
                }
                lo = hi;
                step *= 2;
            }
        } else {
            let mut hi = g;
            loop {
                let lo = g.saturating_sub(step);
                if q(lo) <= quantile {
                    return (lo, hi);
                }
                hi = lo;
                step *= 2;
            }
        }
    }
}

impl DecoderModel<PRECISION> for BinModel<'_, '_> {
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        // the largest i with Q(i) ≤ quantile (Q(0) = 0 ≤ quantile < 2²⁴ = Q(n)), by bisection
        // inside the bracket
        let (mut lo, mut hi) = self.bracket(quantile);
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
