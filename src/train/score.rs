//! Scores of a trained model on the experiment's test data: tiles of whole images, or padded
//! DC-free patches with their DC components (the 8×8 patch data sets).

use crate::io::images::GrayImage;
use crate::model::ride::Ride;
use crate::tasks::eval::{mean_sem, tile_bits, tiles, Score};
use anyhow::{bail, Result};

/// Log-likelihoods of BSDS300-style patches (`data::bsds300_patches`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PatchScore {
    /// per patch: 63-dim log-likelihood / 63 / ln 2 (bit/px), mean ± SEM over patches
    pub score: Score,
    /// mean ± SEM over patches of the 63-dim log-likelihood (DC removed, last pixel dropped), nats
    pub nats63: f64,
    pub nats63_sem: f64,
    /// the same for the 64-dim patch: + log p(DC) + log(1/64), nats
    pub nats64: f64,
    pub nats64_sem: f64,
    /// the DC density: a 10-component Gaussian mixture fitted to the training patches' DCs
    pub dc_model: crate::data::bsds300_patches::Gmm1,
}

/// Scores padded DC-free patches (`test`, canvases whose grid is the patch) and their DCs.
pub fn score_patches(
    model: &Ride<f32>,
    test: &[GrayImage],
    dc_train: &[f64],
    dc_test: &[f64],
) -> Result<PatchScore> {
    let Some(first) = test.first() else {
        bail!("no test patches");
    };
    let (ch, cw) = (first.h, first.w);
    let cells = model.nb.grid(ch, cw).map_or(0, |(a, b)| a * b);
    if cells < 2 {
        bail!("test patches of {ch}×{cw} leave fewer than 2 cells");
    }
    let gmm = crate::data::bsds300_patches::Gmm1::fit(dc_train, 10, 100);
    let (mut l63, mut l64) = (vec![], vec![]);
    for (group, dcs) in test.chunks(256).zip(dc_test.chunks(256)) {
        let refs: Vec<&[f64]> = group.iter().map(|g| g.data.as_slice()).collect();
        let b = model.prepare(&refs, ch, cw, rayon::current_num_threads())?;
        for (ll, &dc) in model.loglik_map(&b).iter().zip(dcs) {
            let x = ll[..cells - 1].iter().sum::<f64>();
            l63.push(x);
            l64.push(x + gmm.log_pdf(dc) + crate::data::bsds300_patches::dc_log_jacobian(cells));
        }
    }
    let (n63, s63) = mean_sem(&l63);
    let (n64, s64) = mean_sem(&l64);
    let d = (cells - 1) as f64 * std::f64::consts::LN_2;
    let per: Vec<f64> = l63.iter().map(|x| x / d).collect();
    Ok(PatchScore {
        score: Score::from_tiles(&per, per.len() * (cells - 1)),
        nats63: n63,
        nats63_sem: s63,
        nats64: n64,
        nats64_sem: s64,
        dc_model: gmm,
    })
}

/// Mean log-likelihood rate (bit/px) of the images' tiles (or whole images when smaller).
/// Errors when no image holds a tile the model can score, or a score is not finite.
pub fn score_images(model: &Ride<f32>, images: &[GrayImage], tile: usize) -> Result<Score> {
    let mut per_tile = vec![];
    let mut pixels = 0;
    for g in images {
        if g.h < tile || g.w < tile {
            bail!(
                "{} ({}×{}) holds no complete {tile}×{tile} evaluation tile: lower evaluation.tile",
                g.name,
                g.h,
                g.w
            );
        }
        let t = tile;
        let Some((gr, gc)) = model.nb.grid(t, t) else {
            bail!(
                "{} ({}×{}) is smaller than the {}×{} neighbourhood: no pixel can be scored",
                g.name,
                g.h,
                g.w,
                model.nb.rows,
                model.nb.cols
            );
        };
        let ts = tiles(&g.data, g.h, g.w, t);
        let bits = tile_bits(model, &ts, t, 16)?;
        pixels += bits.len() * gr * gc;
        per_tile.extend(bits);
    }
    Score::checked(&per_tile, pixels)
}
