//! Checks before training: what would otherwise fail after hours of it, and a starting model
//! (`model.init_from`) that must agree with the config.

use crate::io::images::GrayImage;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::{MixtureSize, Ride};
use crate::train::config::{Experiment, ModelKind};
use anyhow::{bail, Result};
use std::path::Path;

/// What would otherwise fail after hours of training: every stage's patch fits a training
/// image, every test and validation image holds an evaluation tile, and every output path is
/// writable (a regular file or nothing).
pub(crate) fn check_before_training(
    cfg: &Experiment,
    out: &Path,
    train: &[GrayImage],
    valid: &[GrayImage],
    test: &[GrayImage],
    patches: bool,
) -> Result<()> {
    if cfg.model.kind == ModelKind::Ride && !patches {
        for (i, st) in cfg.training.stages.iter().enumerate() {
            if !train.iter().any(|g| g.h >= st.patch && g.w >= st.patch) {
                bail!(
                    "training.stages[{i}].patch = {}: no training image is that large",
                    st.patch
                );
            }
        }
    }
    if !patches {
        let tile = cfg.evaluation.tile;
        if let Some(g) = test.iter().chain(valid).find(|g| g.h < tile || g.w < tile) {
            bail!(
                "{} ({}×{}) holds no complete {tile}×{tile} evaluation tile: lower evaluation.tile",
                g.name,
                g.h,
                g.w
            );
        }
    }
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "train_log.csv",
        "summary.json",
        "stage_start.safetensors",
    ] {
        let p = out.join(f);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_file()) {
            bail!("{}: exists and is not a regular file", p.display());
        }
    }
    Ok(())
}

/// `model.init_from` must agree with the config: neighbourhood, layer sizes (its layers are the
/// config's `hiddens`), extended flags, mixture size and model kind. Anything else is an error,
/// not a silent override of the config that `summary.json` records.
pub(crate) fn check_init_from(cfg: &Experiment, m: &Ride<f32>, nb: &Neighbourhood) -> Result<()> {
    let mc = &cfg.model;
    if m.nb != *nb {
        bail!(
            "its neighbourhood differs from model.nb_size = {}",
            mc.nb_size
        );
    }
    let hiddens: Vec<usize> = m.layers.iter().map(|l| l.h()).collect();
    let want: &[usize] = if mc.kind == ModelKind::Ride {
        &mc.hiddens
    } else {
        &[]
    };
    if hiddens != want {
        bail!("its layers have {hiddens:?} hidden units, the config's model.hiddens = {want:?}");
    }
    if let Some(l) = m.layers.iter().position(|l| l.extended() != mc.extended) {
        bail!(
            "its layer {l} has extended = {}, the config model.extended = {}",
            !mc.extended,
            mc.extended
        );
    }
    let ms = m.mixture_size();
    let cs = MixtureSize {
        components: mc.components,
        scales: mc.scales,
        features: mc.features,
        linear_features: mc.linear_features,
        means: mc.means,
    };
    if ms != cs {
        bail!("its MCGSM is {ms:?}, the config asks for {cs:?}");
    }
    Ok(())
}
