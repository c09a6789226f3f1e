//! Experiment configuration: one TOML file per experiment in `experiments/`, every number in
//! it. Unknown keys are errors (a typo must not silently fall back to a default).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// Where the images come from (docs/MODEL.md §7).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataConfig {
    /// BSDS300 JPEGs → PIL gray / 255, optional dequantisation noise on the training images.
    Bsds300 {
        #[serde(default = "defaults::dequantize")]
        dequantize: bool,
        /// use only the first N training / test images (ids sorted numerically)
        train_limit: Option<usize>,
        test_limit: Option<usize>,
        /// score the lossless gray PNGs of the test set (the fixture model's convention)
        #[serde(default = "defaults::test_gray_png")]
        test_gray_png: bool,
    },
    /// BSDS300 `size × size` patches, DC removed, zero-padded to the model's neighbourhood
    /// (`data::bsds300_patches`): `train_patches` random patches of the training images,
    /// `test_patches` of the test images (JPEG → PIL gray, dequantised like the training set).
    #[serde(rename = "bsds300_patches")]
    Bsds300Patches {
        size: usize,
        train_patches: usize,
        test_patches: usize,
        /// use only the first N training / test images (ids sorted numerically)
        train_limit: Option<usize>,
        test_limit: Option<usize>,
    },
    /// van Hateren .iml in the log domain (protocol in `data::vanhateren`), split by image id.
    Vanhateren {
        train_ids: Vec<String>,
        test_ids: Vec<String>,
    },
    /// Our dead leaves generator.
    Deadleaves {
        size: usize,
        train_images: usize,
        test_images: usize,
        min_radius: f64,
        max_radius: f64,
    },
    /// One Brodatz plate: the top `train_rows` rows train, the rest is the held-out crop.
    Brodatz { plate: String, train_rows: usize },
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

impl DataConfig {
    /// Sizes and names within bounds, before anything is loaded or generated.
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        match self {
            Self::Bsds300 {
                train_limit,
                test_limit,
                ..
            } => {
                for (k, v) in [
                    ("data.train_limit", train_limit),
                    ("data.test_limit", test_limit),
                ] {
                    if let Some(n) = v {
                        lim::check(k, *n, 1, lim::MAX_IMAGES)?;
                    }
                }
            }
            Self::Bsds300Patches {
                size,
                train_patches,
                test_patches,
                train_limit,
                test_limit,
            } => {
                lim::check("data.size", *size, 2, 256)?;
                lim::check(
                    "data.train_patches",
                    *train_patches,
                    1,
                    lim::MAX_CELLS / (size * size),
                )?;
                lim::check(
                    "data.test_patches",
                    *test_patches,
                    1,
                    lim::MAX_CELLS / (size * size),
                )?;
                for (k, v) in [
                    ("data.train_limit", train_limit),
                    ("data.test_limit", test_limit),
                ] {
                    if let Some(n) = v {
                        lim::check(k, *n, 1, lim::MAX_IMAGES)?;
                    }
                }
            }
            Self::Vanhateren {
                train_ids,
                test_ids,
            } => {
                for (k, ids) in [("data.train_ids", train_ids), ("data.test_ids", test_ids)] {
                    if ids.is_empty() {
                        bail!("{k} is empty");
                    }
                    for id in ids {
                        check_name(k, id)?;
                    }
                }
                for (k, ids) in [("data.train_ids", train_ids), ("data.test_ids", test_ids)] {
                    if let Some((i, id)) = ids
                        .iter()
                        .enumerate()
                        .find(|(i, id)| ids[..*i].contains(id))
                    {
                        bail!("{k}[{i}] = '{id}' is listed twice");
                    }
                }
                if let Some(id) = test_ids.iter().find(|id| train_ids.contains(id)) {
                    bail!("'{id}' is in both data.train_ids and data.test_ids: the test images must be held out");
                }
            }
            Self::Deadleaves {
                size,
                train_images,
                test_images,
                min_radius,
                max_radius,
            } => {
                lim::check("data.size", *size, 1, lim::MAX_IMAGE_SIDE)?;
                let per = size * size;
                lim::check("data.train_images", *train_images, 1, lim::MAX_CELLS / per)?;
                lim::check("data.test_images", *test_images, 1, lim::MAX_CELLS / per)?;
                lim::check_positive("data.min_radius", *min_radius)?;
                lim::check_positive("data.max_radius", *max_radius)?;
                if min_radius > max_radius {
                    bail!("data.min_radius = {min_radius} > data.max_radius = {max_radius}");
                }
            }
            Self::Brodatz { plate, .. } => check_name("data.plate", plate)?,
        }
        Ok(())
    }

    /// The preprocessing a model trained on this data records (`crate::io::preprocessing`).
    pub fn preprocessing(&self) -> crate::io::preprocessing::Preprocessing {
        use crate::io::preprocessing::{Domain, Preprocessing};
        Preprocessing::gray8(match self {
            Self::Bsds300 { .. } => Domain::Bsds300,
            Self::Bsds300Patches { .. } => Domain::Bsds300Patches,
            Self::Vanhateren { .. } => Domain::Vanhateren,
            Self::Deadleaves { .. } => Domain::Deadleaves,
            Self::Brodatz { .. } => Domain::Brodatz,
        })
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// whitening + SLSTM stack + MCGSM
    Ride,
    /// the MCGSM on whitened neighbourhoods, no SLSTM (trained by L-BFGS only)
    Mcgsm,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: ModelKind,
    #[serde(default = "defaults::nb_size")]
    pub nb_size: usize,
    /// hidden units of the layers present from the start (more can be added by stages)
    #[serde(default = "defaults::hiddens")]
    pub hiddens: Vec<usize>,
    #[serde(default)]
    pub extended: bool,
    #[serde(default = "defaults::components")]
    pub components: usize,
    #[serde(default = "defaults::scales")]
    pub scales: usize,
    #[serde(default = "defaults::features")]
    pub features: usize,
    #[serde(default)]
    pub linear_features: bool,
    #[serde(default)]
    pub means: bool,
    /// neighbourhood/pixel pairs used to fit the whitening
    #[serde(default = "defaults::whitening_samples")]
    pub whitening_samples: usize,
    /// start from this trained model file (its whitening and layers) instead of a fresh init,
    /// e.g. to add a layer to a trained 1-layer model
    pub init_from: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    #[serde(default = "defaults::optimizer")]
    pub optimizer: OptimizerKind,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::momentum")]
    pub momentum: f64,
    /// horizontal-flip augmentation
    #[serde(default = "defaults::flip")]
    pub flip: bool,
    /// cap on the number of patches per stage
    pub max_patches: Option<usize>,
    /// checkpoint every N batches (0: only after each stage)
    #[serde(default)]
    pub checkpoint_every: usize,
    /// batch chunks (one wavefront each, run in parallel); fixed so that results do not
    /// depend on the number of threads
    #[serde(default = "defaults::chunks")]
    pub chunks: usize,
    /// hold out this many training images; after each stage evaluate them and, if worse than
    /// after the previous stage, restore the previous model and stop
    #[serde(default)]
    pub validation_images: usize,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub patch: usize,
    pub lr: f64,
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    /// add an SLSTM layer with this many hidden units before the stage (lower layers kept,
    /// MCGSM re-initialised)
    pub add_layer: Option<usize>,
}

/// L-BFGS fine-tuning of the MCGSM alone after each stage (for the MCGSM baseline: its whole
/// training).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    #[serde(default = "defaults::finetune_enabled")]
    pub enabled: bool,
    #[serde(default = "defaults::finetune_cells")]
    pub cells: usize,
    #[serde(default = "defaults::max_iter")]
    pub max_iter: u64,
    #[serde(default = "defaults::history")]
    pub history: usize,
    #[serde(default = "defaults::validation_cells")]
    pub validation_cells: usize,
    #[serde(default = "defaults::check_every")]
    pub check_every: usize,
    /// patch size the fine-tuning cells are cut from (default: the stage's patch size)
    pub patch: Option<usize>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default = "defaults::tile")]
    pub tile: usize,
    #[serde(default)]
    pub ensemble: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}
impl Default for FinetuneConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}
impl Default for EvalConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
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

/// Defaults of the config fields (the paper's settings), one function per field.
mod defaults {
    use super::OptimizerKind;

    pub fn seed() -> u64 {
        1
    }
    pub fn dequantize() -> bool {
        true
    }
    pub fn test_gray_png() -> bool {
        true
    }
    pub fn hiddens() -> Vec<usize> {
        vec![64]
    }
    pub fn nb_size() -> usize {
        5
    }
    pub fn components() -> usize {
        32
    }
    pub fn scales() -> usize {
        4
    }
    pub fn features() -> usize {
        32
    }
    pub fn whitening_samples() -> usize {
        500_000
    }
    pub fn optimizer() -> OptimizerKind {
        OptimizerKind::Sgd
    }
    pub fn batch_size() -> usize {
        50
    }
    pub fn momentum() -> f64 {
        0.9
    }
    pub fn flip() -> bool {
        true
    }
    pub fn chunks() -> usize {
        2
    }
    pub fn epochs() -> usize {
        1
    }
    pub fn finetune_enabled() -> bool {
        true
    }
    pub fn finetune_cells() -> usize {
        1_000_000
    }
    pub fn max_iter() -> u64 {
        500
    }
    pub fn history() -> usize {
        20
    }
    pub fn validation_cells() -> usize {
        100_000
    }
    pub fn check_every() -> usize {
        5
    }
    pub fn tile() -> usize {
        64
    }
}
