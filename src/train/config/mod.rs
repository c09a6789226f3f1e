//! Experiment configuration: one TOML file per experiment in `experiments/`, every number in
//! it. Unknown keys are errors (a typo must not silently fall back to a default).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod data;
mod defaults;
mod sections;

pub use data::DataConfig;
pub use sections::{
    EvalConfig, FinetuneConfig, ModelConfig, ModelKind, OptimizerKind, Stage, TrainingConfig,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub finetune: FinetuneConfig,
    #[serde(default)]
    pub evaluation: EvalConfig,
}

/// Names that become folder or file names: letters, digits, `_`, `-`, `.`, not starting with a
/// dot, so nothing can leave the results folder (`../x`, `/abs`, `a/b`).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        bail!(
            "{what} = {name:?}: use 1–200 letters, digits, '_', '-' or '.', not starting with '.' \
             (it names a folder or file under the results)"
        );
    }
    Ok(())
}

impl Experiment {
    /// Reads and validates a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::limits::read_config(path)?;
        let e: Experiment =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        e.validate()
            .with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(e)
    }

    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        check_name("name", &self.name)?;
        let m = &self.model;
        if m.nb_size < 3 || m.nb_size.is_multiple_of(2) || m.nb_size > lim::MAX_NB_SIZE {
            bail!(
                "model.nb_size must be odd, ≥ 3 and ≤ {}, got {}",
                lim::MAX_NB_SIZE,
                m.nb_size
            );
        }
        lim::check("model.components", m.components, 1, lim::MAX_COMPONENTS)?;
        lim::check("model.scales", m.scales, 1, lim::MAX_SCALES)?;
        lim::check("model.features", m.features, 1, lim::MAX_FEATURES)?;
        lim::check(
            "model.whitening_samples",
            m.whitening_samples,
            2,
            lim::MAX_CELLS,
        )?;
        for (i, &h) in m.hiddens.iter().enumerate() {
            lim::check(&format!("model.hiddens[{i}]"), h, 1, lim::MAX_HIDDENS)?;
        }
        let added = self
            .training
            .stages
            .iter()
            .filter(|s| s.add_layer.is_some())
            .count();
        lim::check(
            "layers (model.hiddens + add_layer stages)",
            m.hiddens.len() + added,
            0,
            lim::MAX_LAYERS,
        )?;
        for (i, s) in self.training.stages.iter().enumerate() {
            if let Some(h) = s.add_layer {
                lim::check(
                    &format!("training.stages[{i}].add_layer"),
                    h,
                    1,
                    lim::MAX_HIDDENS,
                )?;
            }
            lim::check(
                &format!("training.stages[{i}].patch"),
                s.patch,
                1,
                lim::MAX_IMAGE_SIDE,
            )?;
            lim::check(
                &format!("training.stages[{i}].epochs"),
                s.epochs,
                1,
                100_000,
            )?;
        }
        let t = &self.training;
        lim::check("training.batch_size", t.batch_size, 1, lim::MAX_BATCH)?;
        lim::check("training.chunks", t.chunks, 1, lim::MAX_CHUNKS)?;
        if !(0.0..1.0).contains(&t.momentum) {
            bail!("training.momentum = {} must be in [0, 1)", t.momentum);
        }
        if t.max_patches == Some(0) {
            bail!("training.max_patches = 0 trains on nothing");
        }
        let f = &self.finetune;
        lim::check("finetune.cells", f.cells, 1, lim::MAX_CELLS)?;
        lim::check(
            "finetune.validation_cells",
            f.validation_cells,
            0,
            lim::MAX_CELLS,
        )?;
        lim::check("finetune.history", f.history, 1, 1000)?;
        lim::check("finetune.check_every", f.check_every, 1, 1_000_000)?;
        lim::check("finetune.patience", f.patience as usize, 0, 1_000_000)?;
        if f.max_iter > 10_000_000 {
            bail!(
                "finetune.max_iter = {} is out of range (≤ 10000000)",
                f.max_iter
            );
        }
        let rows = m.nb_size.div_ceil(2);
        if self.evaluation.ensemble {
            bail!("evaluation.ensemble is not used by `ride train`: score an ensemble with `ride eval --ensemble` or an `ensemble_of` row of a reproduce table");
        }
        lim::check(
            "evaluation.tile",
            self.evaluation.tile,
            m.nb_size,
            lim::MAX_IMAGE_SIDE,
        )
        .with_context(|| format!("the tile must hold the {rows}×{} neighbourhood", m.nb_size))?;
        self.data.validate()?;
        if m.kind == ModelKind::Ride && m.hiddens.is_empty() {
            bail!("model.hiddens must list at least one layer for a RIDE model");
        }
        if let Some(p) = self.finetune.patch {
            if p < m.nb_size {
                bail!(
                    "finetune.patch = {p} is smaller than the {rows}×{} neighbourhood",
                    m.nb_size
                );
            }
        }
        // an MCGSM baseline is fitted by L-BFGS only; its stages (if any) are not used
        let stages: &[Stage] = if m.kind == ModelKind::Ride {
            &t.stages
        } else {
            &[]
        };
        for (i, s) in stages.iter().enumerate() {
            if s.patch < m.nb_size.max(rows) {
                bail!(
                    "training.stages[{i}].patch = {} is smaller than the {rows}×{} neighbourhood",
                    s.patch,
                    m.nb_size
                );
            }
            if !(s.lr > 0.0 && s.lr.is_finite()) {
                bail!("training.stages[{i}].lr must be a positive number");
            }
        }
        if let DataConfig::Bsds300Patches { size, .. } = &self.data {
            if let Some((i, s)) = stages.iter().enumerate().find(|(_, s)| s.patch != *size) {
                bail!(
                    "training.stages[{i}].patch = {} but data.size = {size}: with bsds300_patches every stage trains on the whole (padded) patch",
                    s.patch
                );
            }
        }
        if m.kind == ModelKind::Ride && t.stages.is_empty() {
            bail!("training.stages is empty: a RIDE model needs at least one stage");
        }
        Ok(())
    }
}
