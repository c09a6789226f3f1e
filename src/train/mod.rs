//! Training RIDE and the MCGSM baseline from an experiment config (docs/MODEL.md §5; the images and
//! whitening come from `train::dataset`):
//! curriculum stages of SGD-momentum or Adam on shuffled patches, L-BFGS fine-tuning of the
//! MCGSM after each stage, optional validation images with restore-and-stop, layers added
//! between stages, checkpoints (atomic) after every stage and every N batches, exact resume.
//!
//! Determinism: every random draw comes from `data::rng_for(seed, purpose, stage, index)` (one
//! derivation, no two streams alike), and batches are split into a fixed number of chunks (config
//! `training.chunks`), so a run's result depends on the config and seed only — not on the
//! number of threads, nor on whether it was interrupted and resumed.

mod checkpoint;
mod checks;
pub mod config;
pub mod dataset;
pub mod finetune;
pub mod lbfgs_segments;
pub mod optim;
mod run;
mod score;

pub use checkpoint::{can_resume, read_log, LogRow};
pub use score::{score_images, score_patches, PatchScore};

use crate::tasks::eval::Score;
use crate::train::config::Experiment;
use crate::train::finetune::FinetuneReport;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Trains the experiment into `out` (model.safetensors, checkpoint.safetensors, train_log.csv,
/// summary.json); with `resume`, continues from `out/checkpoint.safetensors`. The steps are in
/// [`run::Run`].
pub fn train(cfg: &Experiment, data_dir: &Path, out: &Path, resume: bool) -> Result<Outcome> {
    let mut run = run::Run::start(cfg, data_dir, out, resume)?;
    if run.is_mcgsm() {
        run.fit_mcgsm()?;
    } else {
        while let Some(s) = run.next_stage() {
            run.stage(s)?;
            run.end_of_stage(s)?;
        }
    }
    run.finish()
}

/// What a finished training run produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub experiment: String,
    pub model_kind: String,
    pub seed: u64,
    pub parameters: usize,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub test: Score,
    /// patch data sets: 63- and 64-dimensional log-likelihoods (nats per patch)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<PatchScore>,
    pub finetune: Vec<FinetuneReport>,
    pub stopped_early: bool,
    pub model_file: String,
    /// provenance: code version, machine, the full config
    pub git_commit: String,
    pub cpu: String,
    pub threads: usize,
    pub config: Experiment,
}

/// Version of the numerics: bump it whenever a change alters what a given config and seed
/// produce (data streams, kernels, training). Cached rows, sweep cells and checkpoints of
/// another version are not reused, and the report flags rows from another version.
///
/// 2: random streams from `data::rng_for`; models record their data domain.
/// 3: the MCGSM without expansion GEMMs (other f32 summation order), packed GEMMs on the
///    SLSTM's diagonals, the AVX2 f64 exp in the L-BFGS objective.
pub const NUMERICS_VERSION: u32 = 3;

pub fn config_hash(cfg: &Experiment) -> String {
    // FNV-1a over the canonical TOML of the config: resuming with another config is an error
    fnv1a_hex(toml::to_string(cfg).unwrap_or_default().as_bytes())
}

/// The hash a trained model is cached under when it starts from another model file: the config
/// with `model.init_from` written relative to the results folder `root` and extended by the
/// hash of that file, so the cache does not depend on where `root` is and follows the model it
/// starts from. Without `init_from`, [`config_hash`].
pub fn config_hash_under(cfg: &Experiment, root: &Path) -> String {
    let mut c = cfg.clone();
    if let Some(p) = &c.model.init_from {
        let bytes = std::fs::read(p).map(|b| fnv1a_hex(&b)).unwrap_or_default();
        let rel = p.strip_prefix(root).unwrap_or(p).display().to_string();
        c.model.init_from = Some(PathBuf::from(format!("{rel}#{bytes}")));
    }
    config_hash(&c)
}

/// FNV-1a (64 bit) of bytes, as 16 hex digits: the hash of configs and model files.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Default output folder of an experiment: `results/<name>`.
pub fn default_out(cfg: &Experiment) -> PathBuf {
    PathBuf::from("results").join(&cfg.name)
}
