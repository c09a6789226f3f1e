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

pub mod config;
pub mod dataset;
pub mod finetune;
pub mod optim;

use crate::data::{self, rng_for, Purpose};
use crate::io::images::GrayImage;
use crate::io::modelfile::{read_extras, to_safetensors, to_safetensors_with, write_atomic};
use crate::io::progress::Progress;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::{MixtureSize, Ride, TrainWork};
use crate::tasks::eval::{tile_bits, tiles, Score};
use crate::train::config::{Experiment, ModelKind, OptimizerKind, TrainingConfig};
use crate::train::dataset::{fit_whitening, load_data, Dataset};
use crate::train::finetune::{Cells, FinetuneReport};
use crate::train::optim::{Adam, Sgd};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

enum Optimizer {
    Sgd(Sgd<f32>),
    Adam(Adam<f32>),
}

impl Optimizer {
    fn new(kind: OptimizerKind, lr: f64, momentum: f64) -> Self {
        match kind {
            OptimizerKind::Sgd => Self::Sgd(Sgd::new(lr, momentum)),
            OptimizerKind::Adam => Self::Adam(Adam::new(lr)),
        }
    }
    fn step(&mut self, params: Vec<&mut Vec<f32>>, grads: &[&Vec<f32>]) {
        match self {
            Self::Sgd(o) => o.step(params, grads),
            Self::Adam(o) => o.step(params, grads),
        }
    }
    /// State tensors for checkpoints.
    fn state(&self) -> (Vec<(String, Vec<f32>)>, u64) {
        let named = |p: &str, v: &Vec<Vec<f32>>| {
            v.iter()
                .enumerate()
                .map(|(i, t)| (format!("{p}{i:04}"), t.clone()))
                .collect::<Vec<_>>()
        };
        match self {
            Self::Sgd(o) => (named("opt.v.", &o.velocity), 0),
            Self::Adam(o) => {
                let mut v = named("opt.m.", &o.m);
                v.extend(named("opt.v.", &o.v));
                (v, o.t)
            }
        }
    }
    /// Restores the state saved by [`Self::state`] for parameters of lengths `lens`: every
    /// tensor must be present with its parameter's length and finite values, and nothing else.
    fn restore(&mut self, tensors: &[(String, Vec<f32>)], t: u64, lens: &[usize]) -> Result<()> {
        let prefixes: &[&str] = match self {
            Self::Sgd(_) => &["opt.v."],
            Self::Adam(_) => &["opt.m.", "opt.v."],
        };
        let expected = prefixes.len() * lens.len();
        if tensors.len() != expected {
            bail!(
                "the optimiser state has {} tensors, expected {expected} ({} per parameter tensor, {} parameter tensors)",
                tensors.len(),
                prefixes.len(),
                lens.len()
            );
        }
        let pick = |p: &str| -> Result<Vec<Vec<f32>>> {
            (0..lens.len())
                .map(|i| {
                    let name = format!("{p}{i:04}");
                    let (_, v) = tensors
                        .iter()
                        .find(|(n, _)| *n == name)
                        .with_context(|| format!("optimiser tensor '{name}' is missing"))?;
                    if v.len() != lens[i] {
                        bail!(
                            "optimiser tensor '{name}' has {} values, expected {}",
                            v.len(),
                            lens[i]
                        );
                    }
                    if let Some(k) = v.iter().position(|x| !x.is_finite()) {
                        bail!("optimiser tensor '{name}'[{k}] is {} (not finite)", v[k]);
                    }
                    Ok(v.clone())
                })
                .collect()
        };
        match self {
            Self::Sgd(o) => o.velocity = pick("opt.v.")?,
            Self::Adam(o) => {
                if t == 0 {
                    bail!("the Adam step count is 0 in a mid-stage checkpoint");
                }
                o.m = pick("opt.m.")?;
                o.v = pick("opt.v.")?;
                o.t = t;
            }
        }
        Ok(())
    }
}

/// Where training stands; stored in checkpoints.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Position {
    stage: usize,
    epoch: usize,
    batch: usize,
    /// best validation rate so far (bit/px, higher is better)
    best_valid: Option<f64>,
    /// training finished early (validation got worse)
    stopped: bool,
    train_seconds: f64,
    log_rows: usize,
    adam_t: u64,
    config_hash: String,
    #[serde(default = "numerics_v1")]
    numerics_version: u32,
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

fn numerics_v1() -> u32 {
    1
}

pub fn config_hash(cfg: &Experiment) -> String {
    // FNV-1a over the canonical TOML of the config: resuming with another config is an error
    fnv1a_hex(toml::to_string(cfg).unwrap_or_default().as_bytes())
}

/// FNV-1a (64 bit) of bytes, as 16 hex digits: the hash of configs and model files.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

fn save_checkpoint(path: &Path, model: &Ride<f32>, opt: &Optimizer, pos: &Position) -> Result<()> {
    let (tensors, t) = opt.state();
    let mut pos = pos.clone();
    pos.adam_t = t;
    let mut meta = HashMap::new();
    meta.insert("train_state".to_string(), serde_json::to_string(&pos)?);
    write_atomic(path, &to_safetensors_with(model, &tensors, &meta)?)
}

/// The checkpoint at the end of a stage: the next stage starts with a fresh optimiser.
fn save_stage_end(
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

fn write_log(path: &Path, rows: &[LogRow]) -> Result<()> {
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

/// Cells for fitting the MCGSM: top-layer features of random patches of the training images.
fn finetune_cells(
    model: &Ride<f32>,
    images: &[GrayImage],
    (ph, pw): (usize, usize),
    count: usize,
    rng: rand_xoshiro::Xoshiro256PlusPlus,
    chunks: usize,
) -> Result<Cells> {
    let mut patches = data::patches::extract_rect_checked(images, (ph, pw), false)?;
    data::shuffle_and_cap(&mut patches, rng, None);
    let grid = model.nb.grid(ph, pw).map_or(1, |(a, b)| a * b).max(1);
    patches.truncate(count.div_ceil(grid));
    let mut cells = Cells::default();
    for group in patches.chunks(256) {
        let refs: Vec<&[f64]> = group.iter().map(|p| p.as_slice()).collect();
        let b = model.prepare(&refs, ph, pw, chunks)?;
        let (u, y) = model.features(&b);
        cells.u.extend(u.iter().map(|&v| v as f64));
        cells.y.extend(y.iter().map(|&v| v as f64));
    }
    let d = model.mcgsm.d;
    cells.y.truncate(count);
    cells.u.truncate(count * d);
    Ok(cells)
}

fn split_cells(c: Cells, train: usize, d: usize) -> (Cells, Cells) {
    let t = train.min(c.rows());
    let valid = Cells {
        u: c.u[t * d..].to_vec(),
        y: c.y[t..].to_vec(),
    };
    (
        Cells {
            u: c.u[..t * d].to_vec(),
            y: c.y[..t].to_vec(),
        },
        valid,
    )
}

/// Fine-tunes the model's MCGSM with L-BFGS (SLSTM frozen).
fn run_finetune(
    cfg: &Experiment,
    model: &mut Ride<f32>,
    images: &[GrayImage],
    patch: (usize, usize),
    stream: u64,
    log: &dyn Fn(&str),
) -> Result<FinetuneReport> {
    let f = &cfg.finetune;
    let total = f.cells + f.validation_cells;
    let cells = finetune_cells(
        model,
        images,
        patch,
        total,
        rng_for(cfg.seed, Purpose::Finetune, stream, 0),
        cfg.training.chunks,
    )?;
    let (train, valid) = split_cells(cells, f.cells, model.mcgsm.d);
    let valid = (valid.rows() > 0).then_some(valid);
    let t0 = Instant::now();
    let label = if stream == 0 {
        "L-BFGS".to_string()
    } else {
        format!("L-BFGS after stage {stream}")
    };
    let (fitted, report) = finetune::lbfgs(
        &label,
        &model.mcgsm.cast(),
        &train,
        valid.as_ref(),
        f.max_iter,
        f.history,
        f.check_every,
    )?;
    model.mcgsm = fitted.cast();
    log(&format!(
        "L-BFGS on {} cells: {} iterations ({}), train NLL {:.4} → {:.4} nats{} in {:.1} s",
        train.rows(),
        report.iterations,
        report.stopped_by,
        report.train_nll_before,
        report.train_nll_after,
        match (report.valid_nll_before, report.valid_nll_after) {
            (Some(a), Some(b)) => format!(", held-out {a:.4} → {b:.4}"),
            _ => String::new(),
        },
        t0.elapsed().as_secs_f64()
    ));
    Ok(report)
}

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
    let mean_sem = |v: &[f64]| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (m, (var / n).sqrt())
    };
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

/// What would otherwise fail after hours of training: every stage's patch fits a training
/// image, every test and validation image holds an evaluation tile, and every output path is
/// writable (a regular file or nothing).
fn check_before_training(
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

/// A checkpoint's position must lie inside the config's curriculum (a finished run has
/// `stage` = the number of stages).
fn check_position(pos: &Position, cfg: &Experiment) -> Result<()> {
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

/// `model.init_from` must agree with the config: neighbourhood, layer sizes (its layers are the
/// config's `hiddens`), extended flags, mixture size and model kind. Anything else is an error,
/// not a silent override of the config that `summary.json` records.
fn check_init_from(cfg: &Experiment, m: &Ride<f32>, nb: &Neighbourhood) -> Result<()> {
    let mc = &cfg.model;
    if m.nb != *nb {
        bail!(
            "its neighbourhood differs from model.nb_size = {}",
            mc.nb_size
        );
    }
    let hiddens: Vec<usize> = m.layers.iter().map(|l| l.h).collect();
    let want: &[usize] = if mc.kind == ModelKind::Ride {
        &mc.hiddens
    } else {
        &[]
    };
    if hiddens != want {
        bail!("its layers have {hiddens:?} hidden units, the config's model.hiddens = {want:?}");
    }
    if let Some(l) = m.layers.iter().position(|l| l.extended != mc.extended) {
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

/// Trains the experiment into `out` (model.safetensors, checkpoint.safetensors, train_log.csv,
/// summary.json); with `resume`, continues from `out/checkpoint.safetensors`.
pub fn train(cfg: &Experiment, data_dir: &Path, out: &Path, resume: bool) -> Result<Outcome> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::io::modelfile::remove_stale_temps(out);
    let ckpt_path = out.join("checkpoint.safetensors");
    let log_path = out.join("train_log.csv");
    let chash = config_hash(cfg);
    let say = |s: &str| eprintln!("[{}] {s}", cfg.name);
    let Dataset {
        mut train,
        test,
        dc,
    } = load_data(cfg, data_dir)?;
    // patch data sets: every training patch is the whole padded canvas
    let canvas = crate::train::dataset::patch_canvas(cfg)?;
    let dims = |p: usize| canvas.unwrap_or((p, p));
    let t = &cfg.training;
    let valid_imgs: Vec<GrayImage> = if t.validation_images > 0 {
        if t.validation_images >= train.len() {
            bail!(
                "training.validation_images = {} leaves no training images (have {})",
                t.validation_images,
                train.len()
            );
        }
        train.split_off(train.len() - t.validation_images)
    } else {
        vec![]
    };
    say(&format!(
        "{} training, {} validation, {} test images",
        train.len(),
        valid_imgs.len(),
        test.len()
    ));
    check_before_training(cfg, out, &train, &valid_imgs, &test, canvas.is_some())?;
    let mc = &cfg.model;
    let nb = Neighbourhood::causal(mc.nb_size)?;
    let mixture = MixtureSize {
        components: mc.components,
        scales: mc.scales,
        features: mc.features,
        linear_features: mc.linear_features,
        means: mc.means,
    };

    // model and position: fresh, or from the checkpoint
    let (model, mut pos, opt_state) = if resume {
        let bytes = crate::io::modelfile::read_bounded(
            &ckpt_path,
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
        if pos.config_hash != chash {
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
        say(&format!(
            "resuming at stage {} epoch {} batch {}",
            pos.stage, pos.epoch, pos.batch
        ));
        (model, pos, Some(tensors))
    } else {
        let model = match &mc.init_from {
            Some(p) => {
                let m = crate::io::modelfile::load(p)
                    .with_context(|| format!("model.init_from = {}", p.display()))?;
                check_init_from(cfg, &m, &nb)
                    .with_context(|| format!("model.init_from = {}", p.display()))?;
                say(&format!(
                    "starting from {} ({} layers)",
                    p.display(),
                    m.layers.len()
                ));
                m
            }
            None => {
                let wh = fit_whitening(&nb, &train, mc.whitening_samples, cfg.seed)?;
                let hiddens: &[usize] = if mc.kind == ModelKind::Ride {
                    &mc.hiddens
                } else {
                    &[]
                };
                let mut m = Ride::<f32>::init(
                    nb.clone(),
                    wh,
                    hiddens,
                    mc.extended,
                    mixture,
                    &mut rng_for(cfg.seed, Purpose::Init, 0, 0),
                );
                m.preprocessing = cfg.data.preprocessing();
                m
            }
        };
        let pos = Position {
            stage: 0,
            epoch: 0,
            batch: 0,
            best_valid: None,
            stopped: false,
            train_seconds: 0.0,
            log_rows: 0,
            adam_t: 0,
            config_hash: chash.clone(),
            numerics_version: NUMERICS_VERSION,
        };
        (model, pos, None)
    };
    let mut model = model;
    let prep = cfg.data.preprocessing();
    if model.preprocessing.domain != prep.domain {
        bail!(
            "the model's data domain is {}, the config's data is {}",
            model.preprocessing.domain.name(),
            prep.domain.name()
        );
    }
    model.preprocessing = prep;
    // the previous stage's model, restored when validation gets worse: on a resume in the
    // middle of a stage it was saved at that stage's start
    let stage_start_path = out.join("stage_start.safetensors");
    let mut before_stage = if resume && (pos.epoch > 0 || pos.batch > 0) && t.validation_images > 0
    {
        Some(
            crate::io::modelfile::load(&stage_start_path).with_context(|| {
                format!(
                    "--resume: the stage-start model {}",
                    stage_start_path.display()
                )
            })?,
        )
    } else {
        None
    };
    let mut log_rows = if resume {
        read_log(&log_path, pos.log_rows)?
    } else {
        vec![]
    };
    let mut reports = vec![];
    let t_start = Instant::now();
    let base_seconds = pos.train_seconds;

    if mc.kind == ModelKind::Mcgsm {
        if !t.stages.is_empty() {
            say("training.stages are not used for an MCGSM baseline (L-BFGS only)");
        }
        if pos.stage == 0 {
            let patch = dims(cfg.finetune.patch.unwrap_or(16));
            reports.push(run_finetune(cfg, &mut model, &train, patch, 0, &say)?);
            pos.stage = 1;
            pos.train_seconds = base_seconds + t_start.elapsed().as_secs_f64();
            save_stage_end(&ckpt_path, &model, t, &pos)?;
        }
    } else {
        let mut work = TrainWork::default();
        let mut opt_state = opt_state;
        while pos.stage < t.stages.len() && !pos.stopped {
            let s = pos.stage;
            let st = &t.stages[s];
            if pos.epoch == 0 && pos.batch == 0 {
                // the model a worse validation restores: this one, before any layer is added
                if t.validation_images > 0 {
                    write_atomic(&stage_start_path, &to_safetensors(&model)?)?;
                    before_stage = Some(model.clone());
                }
                if let Some(h) = st.add_layer {
                    model.add_layer(
                        h,
                        mc.extended,
                        &mut rng_for(cfg.seed, Purpose::AddLayer, s as u64, 0),
                    );
                    say(&format!(
                        "stage {s}: added a layer of {h} units ({} layers)",
                        model.layers.len()
                    ));
                }
            }
            let mut opt = Optimizer::new(t.optimizer, st.lr, t.momentum);
            if let Some(tensors) = opt_state.take() {
                if pos.epoch > 0 || pos.batch > 0 {
                    let lens = model.param_lens();
                    opt.restore(&tensors, pos.adam_t, &lens)
                        .with_context(|| format!("{}: bad checkpoint", ckpt_path.display()))?;
                }
            }
            let (ph, pw) = dims(st.patch);
            let mut patches = data::patches::extract_rect_checked(&train, (ph, pw), t.flip)?;
            let n_batches = patches
                .len()
                .min(t.max_patches.unwrap_or(usize::MAX))
                .div_ceil(t.batch_size);
            let mut progress = Progress::new(
                &format!(
                    "stage {}/{} ({}×{}, lr {})",
                    s + 1,
                    t.stages.len(),
                    ph,
                    pw,
                    st.lr
                ),
                (n_batches * st.epochs) as u64,
            );
            while pos.epoch < st.epochs {
                // shuffle indices, not the patches themselves (no copy of the stage's data)
                if pos.batch > n_batches {
                    bail!(
                        "{}: the checkpoint is at batch {} of a stage with {n_batches} batches",
                        ckpt_path.display(),
                        pos.batch
                    );
                }
                let order = data::patches::shuffled_indices(
                    patches.len(),
                    rng_for(cfg.seed, Purpose::Shuffle, s as u64, pos.epoch as u64),
                    t.max_patches,
                );
                let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
                progress.skip(pos.batch as u64);
                while pos.batch < batches.len() {
                    let tb = Instant::now();
                    let refs: Vec<&[f64]> = batches[pos.batch]
                        .iter()
                        .map(|&k| patches[k].as_slice())
                        .collect();
                    let b = model.prepare(&refs, ph, pw, t.chunks)?;
                    let loss = model.loss_and_grad_with(&b, &mut work);
                    let grad = work.grad.as_ref().context("no gradient")?;
                    let finite = loss.is_finite()
                        && grad
                            .tensors()
                            .iter()
                            .all(|g| g.iter().all(|v| v.is_finite()));
                    if !finite {
                        bail!(
                            "NaN/inf in the training loss or gradient at stage {s}, epoch {}, batch {} (loss {loss}); the last good checkpoint is {}",
                            pos.epoch,
                            pos.batch,
                            if ckpt_path.exists() { ckpt_path.display().to_string() } else { "none (no checkpoint written yet)".into() }
                        );
                    }
                    opt.step(model.params_mut(), &grad.tensors());
                    let secs = tb.elapsed().as_secs_f64();
                    let bits = -loss / std::f64::consts::LN_2;
                    let rate = b.cells() as f64 / secs;
                    progress.inc(bits, rate);
                    log_rows.push(LogRow {
                        stage: s,
                        epoch: pos.epoch,
                        batch: pos.batch,
                        patch: st.patch,
                        bits_per_px: bits,
                        cells_per_s: rate,
                        seconds: base_seconds + t_start.elapsed().as_secs_f64(),
                    });
                    pos.batch += 1;
                    if t.checkpoint_every > 0
                        && pos.batch % t.checkpoint_every == 0
                        && pos.batch < batches.len()
                    {
                        pos.log_rows = log_rows.len();
                        pos.train_seconds = base_seconds + t_start.elapsed().as_secs_f64();
                        write_log(&log_path, &log_rows)?;
                        save_checkpoint(&ckpt_path, &model, &opt, &pos)?;
                    }
                }
                pos.epoch += 1;
                pos.batch = 0;
            }
            progress.finish();
            patches.clear();
            let recent: Vec<f64> = log_rows
                .iter()
                .rev()
                .take(20)
                .map(|r| r.bits_per_px)
                .collect();
            say(&format!(
                "stage {}/{} done: last batches {:.4} bit/px",
                s + 1,
                t.stages.len(),
                recent.iter().sum::<f64>() / recent.len().max(1) as f64
            ));
            if cfg.finetune.enabled {
                let patch = dims(cfg.finetune.patch.unwrap_or(st.patch));
                reports.push(run_finetune(
                    cfg,
                    &mut model,
                    &train,
                    patch,
                    s as u64 + 1,
                    &say,
                )?);
            }
            if !valid_imgs.is_empty() {
                let v = score_images(&model, &valid_imgs, cfg.evaluation.tile)?.bits_per_px;
                say(&format!("validation after stage {}: {v:.4} bit/px", s + 1));
                if pos.best_valid.is_some_and(|b| v < b) {
                    say("validation got worse: restoring the previous stage's model and stopping");
                    model = before_stage
                        .take()
                        .context("no saved model from before this stage")?;
                    pos.stopped = true;
                } else {
                    pos.best_valid = Some(v);
                }
            }
            pos.stage += 1;
            pos.epoch = 0;
            pos.batch = 0;
            pos.log_rows = log_rows.len();
            pos.train_seconds = base_seconds + t_start.elapsed().as_secs_f64();
            write_log(&log_path, &log_rows)?;
            save_stage_end(&ckpt_path, &model, t, &pos)?;
        }
    }
    let train_seconds = base_seconds + t_start.elapsed().as_secs_f64();
    let model_path = out.join("model.safetensors");
    write_log(&log_path, &log_rows)?;
    // evaluate before writing the model: a failed evaluation leaves no model without summary
    // (the trained state is in the checkpoint)
    let te = Instant::now();
    let (test_score, patch_score) = match (&dc, canvas) {
        (Some((dc_train, dc_test)), Some(_)) => {
            let p = score_patches(&model, &test, dc_train, dc_test)?;
            (p.score.clone(), Some(p))
        }
        _ => (score_images(&model, &test, cfg.evaluation.tile)?, None),
    };
    let eval_seconds = te.elapsed().as_secs_f64();
    say(&format!(
        "test: {:.4} ± {:.4} bit/px over {} tiles",
        test_score.bits_per_px, test_score.sem, test_score.tiles
    ));
    let outcome = Outcome {
        experiment: cfg.name.clone(),
        model_kind: format!("{:?}", mc.kind).to_lowercase(),
        seed: cfg.seed,
        parameters: model.num_params(),
        train_seconds,
        eval_seconds,
        test: test_score,
        patches: patch_score,
        finetune: reports,
        stopped_early: pos.stopped,
        model_file: model_path.display().to_string(),
        git_commit: crate::io::provenance::git_commit(),
        cpu: crate::io::provenance::cpu_model(),
        threads: rayon::current_num_threads(),
        config: cfg.clone(),
    };
    write_atomic(&model_path, &to_safetensors(&model)?)?;
    if let Err(e) = write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&outcome)?.as_bytes(),
    ) {
        let _ = std::fs::remove_file(&model_path);
        return Err(e);
    }
    let _ = std::fs::remove_file(&stage_start_path);
    Ok(outcome)
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

/// Default output folder of an experiment: `results/<name>`.
pub fn default_out(cfg: &Experiment) -> PathBuf {
    PathBuf::from("results").join(&cfg.name)
}
