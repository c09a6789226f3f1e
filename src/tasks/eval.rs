//! Evaluation (docs/MODEL.md §6): bits per pixel over non-overlapping tiles, mean ± standard error.
//!
//! "Bits per pixel" here is the log-likelihood rate: mean per-pixel log-likelihood (data units,
//! log|det P_out| included) / ln 2 — positive, higher is better, as in the paper's tables.

use crate::model::ride::Ride;
use crate::numerics::real::Real;
use anyhow::{bail, Result};

/// Largest plausible |log-likelihood rate| of a tile (bit/px): beyond it a score is refused.
pub const MAX_ABS_BITS: f64 = 1000.0;

/// Non-overlapping `t × t` tiles from the top-left of a row-major `h × w` image (partial tiles
/// at the right and bottom edges are dropped).
pub fn tiles(img: &[f64], h: usize, w: usize, t: usize) -> Vec<Vec<f64>> {
    let mut out = vec![];
    if t == 0 {
        return out;
    }
    for ti in 0..h / t {
        for tj in 0..w / t {
            let mut tile = Vec::with_capacity(t * t);
            for r in 0..t {
                let s = (ti * t + r) * w + tj * t;
                tile.extend_from_slice(&img[s..s + t]);
            }
            out.push(tile);
        }
    }
    out
}

/// Summary of a scoring run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Score {
    /// mean over tiles of the log-likelihood rate (bit/px, higher is better)
    pub bits_per_px: f64,
    /// standard error of that mean over tiles
    pub sem: f64,
    pub tiles: usize,
    /// number of scored pixels (grid cells)
    pub pixels: usize,
    /// each tile's rate (bit/px), in tile order: for paired comparisons of models on the same
    /// tiles (not serialized)
    #[serde(skip)]
    pub per_tile: Vec<f64>,
}

/// Mean and its standard error (sample standard deviation / √n) of `v`; (0, 0) for no values,
/// a standard error of 0 for one.
pub fn mean_sem(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n.max(1) as f64;
    let var = if n > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    (mean, (var / n.max(1) as f64).sqrt())
}

impl Score {
    pub fn from_tiles(per_tile_bits: &[f64], pixels: usize) -> Self {
        let (mean, sem) = mean_sem(per_tile_bits);
        Self {
            bits_per_px: mean,
            sem,
            tiles: per_tile_bits.len(),
            pixels,
            per_tile: per_tile_bits.to_vec(),
        }
    }

    /// [`Self::from_tiles`] for a score that will be reported: zero tiles, zero pixels or a
    /// non-finite tile are errors, never a number.
    pub fn checked(per_tile_bits: &[f64], pixels: usize) -> Result<Self> {
        if per_tile_bits.is_empty() || pixels == 0 {
            bail!("no complete tile to score (0 tiles, 0 pixels): the images are smaller than the tile or the neighbourhood");
        }
        if let Some(k) = per_tile_bits.iter().position(|v| !v.is_finite()) {
            bail!(
                "tile {k} has a non-finite log-likelihood rate ({}): the model or the data is broken",
                per_tile_bits[k]
            );
        }
        // no 8-bit or log-intensity image has a density anywhere near 2^±1000 per pixel
        if let Some(k) = per_tile_bits.iter().position(|v| v.abs() > MAX_ABS_BITS) {
            bail!(
                "tile {k} scores {} bit/px, beyond ±{MAX_ABS_BITS}: a damaged model or data from another domain; no score is reported",
                per_tile_bits[k]
            );
        }
        Ok(Self::from_tiles(per_tile_bits, pixels))
    }
}

/// Log-likelihood rate (bit/px) of each tile; tiles are values on the model's scale.
/// Tiles are processed `batch` at a time, each batch split over the rayon threads.
pub fn tile_bits<T: Real>(
    model: &Ride<T>,
    tiles: &[Vec<f64>],
    t: usize,
    batch: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(tiles.len());
    let threads = rayon::current_num_threads();
    for group in tiles.chunks(batch.max(1)) {
        let refs: Vec<&[f64]> = group.iter().map(|v| v.as_slice()).collect();
        let b = model.prepare(&refs, t, t, threads)?;
        for ll in model.loglik_map(&b) {
            out.push(ll.iter().sum::<f64>() / ll.len() as f64 / std::f64::consts::LN_2);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Ensemble over the symmetries of the square ("EoRIDE", docs/MODEL.md §6).

/// One of the 8 symmetries of the square (the dihedral group D4) acting on an image.
///
/// The transformed image of an `h × w` image is `h' × w'` (`w × h` for the transposing ones);
/// its pixel (a, b) is the original pixel [`Dihedral::to_original`]`(a, b)`: first the flips act
/// on the transformed coordinates, then the transpose swaps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dihedral {
    pub name: &'static str,
    pub transpose: bool,
    pub flip_rows: bool,
    pub flip_cols: bool,
}

/// The 8 transforms, identity first.
pub const DIHEDRAL: [Dihedral; 8] = [
    Dihedral::new("identity", false, false, false),
    Dihedral::new("flip horizontal", false, false, true),
    Dihedral::new("flip vertical", false, true, false),
    Dihedral::new("rotate 180", false, true, true),
    Dihedral::new("transpose", true, false, false),
    Dihedral::new("anti-transpose", true, true, true),
    // new[a][b] = old[b][w−1−a] (counter-clockwise)
    Dihedral::new("rotate 90", true, true, false),
    // new[a][b] = old[h−1−b][a] (clockwise)
    Dihedral::new("rotate 270", true, false, true),
];

impl Dihedral {
    const fn new(name: &'static str, transpose: bool, flip_rows: bool, flip_cols: bool) -> Self {
        Self {
            name,
            transpose,
            flip_rows,
            flip_cols,
        }
    }

    /// Size `(h', w')` of the transformed `h × w` image.
    pub fn dims(&self, h: usize, w: usize) -> (usize, usize) {
        if self.transpose {
            (w, h)
        } else {
            (h, w)
        }
    }

    /// Original coordinates of pixel (a, b) of the transformed `h × w` image.
    #[inline]
    pub fn to_original(&self, a: usize, b: usize, h: usize, w: usize) -> (usize, usize) {
        let (h2, w2) = self.dims(h, w);
        let a = if self.flip_rows { h2 - 1 - a } else { a };
        let b = if self.flip_cols { w2 - 1 - b } else { b };
        if self.transpose {
            (b, a)
        } else {
            (a, b)
        }
    }

    /// The transformed image (row-major `h' × w'`, see [`Self::dims`]) of a row-major `h × w` one.
    pub fn apply(&self, img: &[f64], h: usize, w: usize) -> Vec<f64> {
        assert_eq!(img.len(), h * w, "image has the wrong size");
        let (h2, w2) = self.dims(h, w);
        let mut out = Vec::with_capacity(h * w);
        for a in 0..h2 {
            for b in 0..w2 {
                let (r, c) = self.to_original(a, b, h, w);
                out.push(img[r * w + c]);
            }
        }
        out
    }

    /// For each grid cell (raster order) of the transformed image: the original pixel it
    /// predicts.
    fn predicted_pixels(
        &self,
        nb: &crate::model::neighbourhood::Neighbourhood,
        h: usize,
        w: usize,
    ) -> Result<Vec<(usize, usize)>> {
        let (h2, w2) = self.dims(h, w);
        let Some((gr, gc)) = nb.grid(h2, w2) else {
            anyhow::bail!(
                "{h2}×{w2} ({}) is smaller than the {}×{} neighbourhood",
                self.name,
                nb.rows,
                nb.cols
            );
        };
        let (orow, ocol) = nb.output_pos();
        let mut v = Vec::with_capacity(gr * gc);
        for r in 0..gr {
            for c in 0..gc {
                v.push(self.to_original(r + orow, c + ocol, h, w));
            }
        }
        Ok(v)
    }
}

/// The pixels of an `h × w` image that the model predicts under all 8 transforms (row-major
/// mask). For the standard causal `nb_size` n on a square tile this is the tile without a border
/// of (n−1)/2 pixels (64×64, n = 5: rows and columns 2…61); general masks are handled by
/// intersecting the predicted sets explicitly.
pub fn common_pixels(
    nb: &crate::model::neighbourhood::Neighbourhood,
    h: usize,
    w: usize,
) -> Result<Vec<bool>> {
    let mut count = vec![0u8; h * w];
    for t in &DIHEDRAL {
        for (r, c) in t.predicted_pixels(nb, h, w)? {
            count[r * w + c] += 1;
        }
    }
    Ok(count.into_iter().map(|k| k == 8).collect())
}

/// Per tile (square `t × t`, row-major) and transform ([`DIHEDRAL`] order): the
/// log-likelihood (nats, data units) of the common pixels ([`common_pixels`]) when the model
/// reads the transformed tile; and the number of common pixels per tile. `batch` tiles
/// (× 8 transforms) go to the model at a time.
fn transform_logliks<T: Real>(
    model: &Ride<T>,
    tiles: &[Vec<f64>],
    t: usize,
    batch: usize,
) -> Result<(Vec<[f64; 8]>, usize)> {
    let common = common_pixels(&model.nb, t, t)?;
    let n_common = common.iter().filter(|&&b| b).count();
    if n_common == 0 {
        anyhow::bail!("no pixel of a {t}×{t} tile is predicted under all 8 flips/transposes");
    }
    // grid cells (raster) of each transform whose predicted pixel is common
    let selected: Vec<Vec<usize>> = DIHEDRAL
        .iter()
        .map(|tr| {
            Ok(tr
                .predicted_pixels(&model.nb, t, t)?
                .into_iter()
                .enumerate()
                .filter(|(_, (r, c))| common[r * t + c])
                .map(|(k, _)| k)
                .collect::<Vec<_>>())
        })
        .collect::<Result<_>>()?;
    debug_assert!(selected.iter().all(|s| s.len() == n_common));
    let threads = rayon::current_num_threads();
    let mut out = Vec::with_capacity(tiles.len());
    for group in tiles.chunks(batch.max(1)) {
        let mut patches = Vec::with_capacity(group.len() * 8);
        for tile in group {
            if tile.len() != t * t {
                anyhow::bail!("tile has {} values, expected {t}×{t}", tile.len());
            }
            patches.extend(DIHEDRAL.iter().map(|tr| tr.apply(tile, t, t)));
        }
        let refs: Vec<&[f64]> = patches.iter().map(|v| v.as_slice()).collect();
        let b = model.prepare(&refs, t, t, threads)?;
        let maps = model.loglik_map(&b);
        for per_tile in maps.chunks(8) {
            let mut l = [0.0; 8];
            for ((v, ll), sel) in l.iter_mut().zip(per_tile).zip(&selected) {
                *v = sel.iter().map(|&k| ll[k]).sum::<f64>();
            }
            out.push(l);
        }
    }
    Ok((out, n_common))
}

/// Ensemble score of one tile from its per-transform log-likelihoods (nats over `n` pixels):
/// (logsumexp_T L_T − ln 8) / n / ln 2 bit/px.
pub fn ensemble_bits(l: &[f64], n: usize) -> f64 {
    (crate::model::mcgsm::logsumexp(l) - (l.len() as f64).ln()) / n as f64 / std::f64::consts::LN_2
}

/// EoRIDE of a set of tiles: see [`ensemble_tile_bits`].
#[derive(Clone, Debug)]
pub struct EnsembleTiles {
    /// Per tile: the log-mean-exp over the 8 flips/transposes of the likelihood of the common
    /// pixels (bit/px, higher is better).
    pub ensemble: Vec<f64>,
    /// Per tile: the single model (identity orientation) over the same pixels (bit/px).
    pub single: Vec<f64>,
    /// Per tile and transform ([`DIHEDRAL`] order): log-likelihood of the common pixels (nats).
    pub logliks: Vec<[f64; 8]>,
    /// Common pixels per tile ([`common_pixels`]).
    pub pixels_per_tile: usize,
}

/// EoRIDE (docs/MODEL.md §6), the one entry point: square `t × t` tiles (model units), each
/// scored under the 8 flips/transposes over the pixels every transform predicts, `batch`
/// tiles at a time; the ensemble and the single model on the same pixels.
pub fn ensemble_tile_bits<T: Real>(
    model: &Ride<T>,
    tiles: &[Vec<f64>],
    t: usize,
    batch: usize,
) -> Result<EnsembleTiles> {
    let (logliks, n) = transform_logliks(model, tiles, t, batch)?;
    Ok(EnsembleTiles {
        ensemble: logliks.iter().map(|l| ensemble_bits(l, n)).collect(),
        single: logliks
            .iter()
            .map(|l| l[0] / n as f64 / std::f64::consts::LN_2)
            .collect(),
        logliks,
        pixels_per_tile: n,
    })
}
