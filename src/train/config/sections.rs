//! The `[model]`, `[training]`, `[finetune]` and `[evaluation]` sections.

use super::defaults;
use serde::{Deserialize, Serialize};

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
    /// L-BFGS in resumable segments of this many iterations, each restarting its memory
    /// (`train::lbfgs_segments`); 0: one run, not resumable mid-way. Not serialized when 0,
    /// so the hashes of configs that do not use it are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub segment: u64,
    /// stop once this many held-out checks in a row did not improve on the best (0 or 1: at the
    /// first one). Not serialized when 0, so the hashes of configs that do not use it are
    /// unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub patience: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
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
