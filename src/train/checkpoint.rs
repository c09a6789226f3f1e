//! Checkpoints and the training log: where a run stands ([`Position`]), the model and the
//! optimiser state in one safetensors file (written atomically), the log of every batch.

use crate::io::files::write_atomic;
use crate::io::modelfile::{read_extras, to_safetensors_with};
use crate::model::ride::Ride;
use crate::train::config::{Experiment, ModelKind, TrainingConfig};
use crate::train::optim::Optimizer;
use crate::train::{config_hash, NUMERICS_VERSION};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// The optimiser state of a checkpoint: named tensors.
pub(crate) type OptState = Vec<(String, Vec<f32>)>;

/// Where training stands; stored in checkpoints.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub(crate) struct Position {
    pub(crate) stage: usize,
    pub(crate) epoch: usize,
    pub(crate) batch: usize,
    /// best validation rate so far (bit/px, higher is better)
    pub(crate) best_valid: Option<f64>,
    /// training finished early (validation got worse)
    pub(crate) stopped: bool,
    pub(crate) train_seconds: f64,
    pub(crate) log_rows: usize,
    pub(crate) adam_t: u64,
    pub(crate) config_hash: String,
    #[serde(default = "numerics_v1")]
    pub(crate) numerics_version: u32,
    /// what the L-BFGS fine-tuning after each finished stage did, so that a resumed run's
    /// summary has every stage's (absent from checkpoints written before it was kept)
    #[serde(default)]
    pub(crate) finetune: Vec<crate::train::finetune::FinetuneReport>,
}

/// One line of the training log.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LogRow {
    pub stage: usize,
    pub epoch: usize,
    pub batch: usize,
    pub patch: usize,
    /// log-likelihood rate of the batch, bit/px (higher is better)
    pub bits_per_px: f64,
    pub cells_per_s: f64,
    pub seconds: f64,
}

fn numerics_v1() -> u32 {
    1
}

pub(crate) fn save_checkpoint(
    path: &Path,
    model: &Ride<f32>,
    opt: &Optimizer,
    pos: &Position,
) -> Result<()> {
    let (tensors, t) = opt.state();
    let mut pos = pos.clone();
    pos.adam_t = t;
    let mut meta = HashMap::new();
    meta.insert("train_state".to_string(), serde_json::to_string(&pos)?);
    write_atomic(path, &to_safetensors_with(model, &tensors, &meta)?)
}

/// The checkpoint at the end of a stage: the next stage starts with a fresh optimiser.
pub(crate) fn save_stage_end(
    path: &Path,
    model: &Ride<f32>,
    t: &TrainingConfig,
    pos: &Position,
) -> Result<()> {
    save_checkpoint(
        path,
        model,
        &Optimizer::new(t.optimizer, 1.0, t.momentum),
        pos,
    )
}

pub(crate) fn write_log(path: &Path, rows: &[LogRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    write_atomic(path, &w.into_inner().context("writing the training log")?)
}

/// The first `keep` rows of a training log (none if it does not exist).
pub fn read_log(path: &Path, keep: usize) -> Result<Vec<LogRow>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<LogRow> = r.deserialize().take(keep).collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A checkpoint's position must lie inside the config's curriculum (a finished run has
/// `stage` = the number of stages).
pub(crate) fn check_position(pos: &Position, cfg: &Experiment) -> Result<()> {
    let stages = &cfg.training.stages;
    let n = if cfg.model.kind == ModelKind::Mcgsm {
        1
    } else {
        stages.len()
    };
    if pos.stage > n {
        bail!("stage {} beyond the config's {n} stages", pos.stage);
    }
    if let Some(st) = stages
        .get(pos.stage)
        .filter(|_| cfg.model.kind == ModelKind::Ride)
    {
        if pos.epoch >= st.epochs {
            bail!(
                "epoch {} of stage {} which has {} epochs",
                pos.epoch,
                pos.stage,
                st.epochs
            );
        }
        if pos.batch > crate::limits::MAX_CELLS {
            bail!("batch {} is absurd", pos.batch);
        }
    } else if pos.epoch != 0 || pos.batch != 0 {
        bail!(
            "a finished run with epoch {} batch {}",
            pos.epoch,
            pos.batch
        );
    }
    if !pos.train_seconds.is_finite() || pos.train_seconds < 0.0 {
        bail!("train_seconds = {}", pos.train_seconds);
    }
    if pos.adam_t > 1 << 40 {
        bail!("the Adam step count {} is absurd", pos.adam_t);
    }
    Ok(())
}

/// True when `dir/checkpoint.safetensors` exists and can resume `cfg` with this build (same
/// config hash and numerics version); a run that finds a stale checkpoint starts afresh.
pub fn can_resume(cfg: &Experiment, dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("checkpoint.safetensors")) else {
        return false;
    };
    let Ok((_, meta)) = read_extras(&bytes, "opt.") else {
        return false;
    };
    serde_json::from_str::<Position>(meta.get("train_state").map_or("", |s| s))
        .is_ok_and(|p| p.config_hash == config_hash(cfg) && p.numerics_version == NUMERICS_VERSION)
}

/// The model, position and optimiser state of a checkpoint written by this config and build.
pub(crate) fn load_checkpoint(
    cfg: &Experiment,
    ckpt_path: &Path,
) -> Result<(Ride<f32>, Position, OptState)> {
    let bytes = crate::io::files::read_bounded(
        ckpt_path,
        crate::io::modelfile::MAX_MODEL_BYTES * 3,
        "checkpoint",
    )
    .with_context(|| "--resume".to_string())?;
    let model = crate::io::modelfile::from_safetensors(&bytes)
        .and_then(|m| m.validate().map(|()| m))
        .with_context(|| format!("{}: bad checkpoint", ckpt_path.display()))?;
    let (tensors, meta) = read_extras(&bytes, "opt.")
        .with_context(|| format!("{}: bad checkpoint", ckpt_path.display()))?;
    let pos: Position = serde_json::from_str(meta.get("train_state").map_or("", |s| s))
        .with_context(|| format!("{}: no training state", ckpt_path.display()))?;
    if pos.config_hash != config_hash(cfg) {
        bail!(
            "{} was written by a different config; refusing to resume",
            ckpt_path.display()
        );
    }
    check_position(&pos, cfg)
        .with_context(|| format!("{}: bad training state", ckpt_path.display()))?;
    if pos.numerics_version != NUMERICS_VERSION {
        bail!(
            "{} was written by numerics version {} (this build: {NUMERICS_VERSION}); refusing to resume",
            ckpt_path.display(),
            pos.numerics_version
        );
    }
    Ok((model, pos, tensors))
}

/// The position of a run that has not started.
pub(crate) fn fresh_position(cfg: &Experiment) -> Position {
    Position {
        stage: 0,
        epoch: 0,
        batch: 0,
        best_valid: None,
        stopped: false,
        train_seconds: 0.0,
        log_rows: 0,
        adam_t: 0,
        config_hash: config_hash(cfg),
        numerics_version: NUMERICS_VERSION,
        finetune: vec![],
    }
}
