//! One training run as named steps: [`Run::start`] (data, checks, a fresh model or the
//! checkpoint's), [`Run::stage`] (the batches of one curriculum stage), [`Run::end_of_stage`]
//! (fine-tuning, validation, checkpoint), [`Run::fit_mcgsm`] (the MCGSM baseline, L-BFGS only)
//! and [`Run::finish`] (test score, model file, summary).

use crate::data::{self, rng_for, Purpose};
use crate::io::files::write_atomic;
use crate::io::images::GrayImage;
use crate::io::modelfile::to_safetensors;
use crate::io::progress::Progress;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::{MixtureSize, Ride, TrainWork};
use crate::train::checkpoint::{
    fresh_position, load_checkpoint, read_log, save_checkpoint, save_stage_end, write_log, LogRow,
    OptState, Position,
};
use crate::train::checks::{check_before_training, check_init_from};
use crate::train::config::{Experiment, ModelKind};
use crate::train::dataset::{fit_whitening, load_data, Dataset};
use crate::train::finetune::run_finetune;
use crate::train::optim::Optimizer;
use crate::train::score::{score_images, score_patches};
use crate::train::Outcome;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The DC components (training, test) of a patch data set.
type DcPair = (Vec<f64>, Vec<f64>);

/// The state of a training run between its steps.
pub(crate) struct Run<'a> {
    cfg: &'a Experiment,
    ckpt_path: PathBuf,
    log_path: PathBuf,
    /// the model a worse validation restores (saved at each stage's start)
    stage_start_path: PathBuf,
    out: PathBuf,
    train: Vec<GrayImage>,
    valid: Vec<GrayImage>,
    test: Vec<GrayImage>,
    /// DC components of the patch data sets (train, test)
    dc: Option<DcPair>,
    /// patch data sets: every training patch is the whole padded canvas
    canvas: Option<(usize, usize)>,
    pub(crate) model: Ride<f32>,
    pos: Position,
    /// optimiser state of a checkpoint written mid-stage
    opt_state: Option<OptState>,
    before_stage: Option<Ride<f32>>,
    log_rows: Vec<LogRow>,
    t_start: Instant,
    base_seconds: f64,
    work: TrainWork<f32>,
}

impl<'a> Run<'a> {
    fn say(&self, s: &str) {
        eprintln!("[{}] {s}", self.cfg.name);
    }

    fn dims(&self, p: usize) -> (usize, usize) {
        self.canvas.unwrap_or((p, p))
    }

    fn seconds(&self) -> f64 {
        self.base_seconds + self.t_start.elapsed().as_secs_f64()
    }

    /// Loads the data, checks what could fail later, and starts from a fresh (or
    /// `model.init_from`) model or, with `resume`, from `out/checkpoint.safetensors`.
    pub(crate) fn start(
        cfg: &'a Experiment,
        data_dir: &Path,
        out: &Path,
        resume: bool,
    ) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        crate::io::files::remove_stale_temps(out);
        let say = |s: &str| eprintln!("[{}] {s}", cfg.name);
        let Dataset {
            mut train,
            test,
            dc,
        } = load_data(cfg, data_dir)?;
        let canvas = crate::train::dataset::patch_canvas(cfg)?;
        let t = &cfg.training;
        let valid: Vec<GrayImage> = if t.validation_images > 0 {
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
            valid.len(),
            test.len()
        ));
        check_before_training(cfg, out, &train, &valid, &test, canvas.is_some())?;
        let ckpt_path = out.join("checkpoint.safetensors");
        let (mut model, pos, opt_state) = if resume {
            let (model, pos, tensors) = load_checkpoint(cfg, &ckpt_path)?;
            say(&format!(
                "resuming at stage {} epoch {} batch {}",
                pos.stage, pos.epoch, pos.batch
            ));
            (model, pos, Some(tensors))
        } else {
            (initial_model(cfg, &train)?, fresh_position(cfg), None)
        };
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
        let before_stage = if resume && (pos.epoch > 0 || pos.batch > 0) && t.validation_images > 0
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
        let log_path = out.join("train_log.csv");
        let log_rows = if resume {
            read_log(&log_path, pos.log_rows)?
        } else {
            vec![]
        };
        let base_seconds = pos.train_seconds;
        Ok(Self {
            cfg,
            ckpt_path,
            log_path,
            stage_start_path,
            out: out.to_path_buf(),
            train,
            valid,
            test,
            dc,
            canvas,
            model,
            pos,
            opt_state,
            before_stage,
            log_rows,
            t_start: Instant::now(),
            base_seconds,
            work: TrainWork::default(),
        })
    }

    /// Whether the config trains the MCGSM baseline (L-BFGS only, no stages).
    pub(crate) fn is_mcgsm(&self) -> bool {
        self.cfg.model.kind == ModelKind::Mcgsm
    }

    /// The MCGSM baseline: L-BFGS on cells of the training images, unless the checkpoint says
    /// it is done.
    pub(crate) fn fit_mcgsm(&mut self) -> Result<()> {
        let (cfg, t) = (self.cfg, &self.cfg.training);
        if !t.stages.is_empty() {
            self.say("training.stages are not used for an MCGSM baseline (L-BFGS only)");
        }
        if self.pos.stage == 0 {
            self.finetune(cfg.finetune.patch.unwrap_or(16), 0)?;
            self.pos.stage = 1;
            self.pos.train_seconds = self.seconds();
            save_stage_end(&self.ckpt_path, &self.model, t, &self.pos)?;
        }
        Ok(())
    }

    /// L-BFGS fine-tuning of the MCGSM on cells of `patch`-sized training patches (random
    /// stream `stream`: 0 for the baseline, the stage number after a stage).
    fn finetune(&mut self, patch: usize, stream: u64) -> Result<()> {
        let cfg = self.cfg;
        let say = |s: &str| eprintln!("[{}] {s}", cfg.name);
        let patch = self.dims(patch);
        let report = run_finetune(
            cfg,
            &mut self.model,
            &self.train,
            patch,
            stream,
            &self.out,
            &say,
        )?;
        // segments run before a resume count as this run's machine time
        self.base_seconds += report.earlier_seconds;
        self.pos.finetune.push(report);
        Ok(())
    }

    /// The stage to run next, if any (none after the last or after an early stop).
    pub(crate) fn next_stage(&self) -> Option<usize> {
        (self.pos.stage < self.cfg.training.stages.len() && !self.pos.stopped)
            .then_some(self.pos.stage)
    }

    /// The batches of stage `s` (from the checkpoint's position on a resume): the stage-start
    /// model saved, a layer added if the stage asks, then every epoch's shuffled batches, with
    /// a checkpoint every `checkpoint_every` batches.
    pub(crate) fn stage(&mut self, s: usize) -> Result<()> {
        let (cfg, t) = (self.cfg, &self.cfg.training);
        let st = &t.stages[s];
        if self.pos.epoch == 0 && self.pos.batch == 0 {
            // the model a worse validation restores: this one, before any layer is added
            if t.validation_images > 0 {
                write_atomic(&self.stage_start_path, &to_safetensors(&self.model)?)?;
                self.before_stage = Some(self.model.clone());
            }
            if let Some(h) = st.add_layer {
                self.model.add_layer(
                    h,
                    cfg.model.extended,
                    &mut rng_for(cfg.seed, Purpose::AddLayer, s as u64, 0),
                );
                self.say(&format!(
                    "stage {s}: added a layer of {h} units ({} layers)",
                    self.model.layers.len()
                ));
            }
        }
        let mut opt = Optimizer::new(t.optimizer, st.lr, t.momentum);
        if let Some(tensors) = self.opt_state.take() {
            if self.pos.epoch > 0 || self.pos.batch > 0 {
                let lens = self.model.param_lens();
                opt.restore(&tensors, self.pos.adam_t, &lens)
                    .with_context(|| format!("{}: bad checkpoint", self.ckpt_path.display()))?;
            }
        }
        let (ph, pw) = self.dims(st.patch);
        let patches = data::patches::extract_rect_checked(&self.train, (ph, pw), t.flip)?;
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
        while self.pos.epoch < st.epochs {
            // shuffle indices, not the patches themselves (no copy of the stage's data)
            if self.pos.batch > n_batches {
                bail!(
                    "{}: the checkpoint is at batch {} of a stage with {n_batches} batches",
                    self.ckpt_path.display(),
                    self.pos.batch
                );
            }
            let order = data::patches::shuffled_indices(
                patches.len(),
                rng_for(cfg.seed, Purpose::Shuffle, s as u64, self.pos.epoch as u64),
                t.max_patches,
            );
            let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
            progress.skip(self.pos.batch as u64);
            while self.pos.batch < batches.len() {
                let refs: Vec<&[f64]> = batches[self.pos.batch]
                    .iter()
                    .map(|&k| patches[k].as_slice())
                    .collect();
                let (bits, rate) = self.step(&mut opt, &refs, (ph, pw), s)?;
                progress.inc(bits, rate);
                self.log_rows.push(LogRow {
                    stage: s,
                    epoch: self.pos.epoch,
                    batch: self.pos.batch,
                    patch: st.patch,
                    bits_per_px: bits,
                    cells_per_s: rate,
                    seconds: self.seconds(),
                });
                self.pos.batch += 1;
                if t.checkpoint_every > 0
                    && self.pos.batch.is_multiple_of(t.checkpoint_every)
                    && self.pos.batch < batches.len()
                {
                    self.pos.log_rows = self.log_rows.len();
                    self.pos.train_seconds = self.seconds();
                    write_log(&self.log_path, &self.log_rows)?;
                    save_checkpoint(&self.ckpt_path, &self.model, &opt, &self.pos)?;
                }
            }
            self.pos.epoch += 1;
            self.pos.batch = 0;
        }
        progress.finish();
        Ok(())
    }

    /// One optimiser step on one batch of patches: (log-likelihood rate in bit/px, cells/s).
    fn step(
        &mut self,
        opt: &mut Optimizer,
        refs: &[&[f64]],
        (ph, pw): (usize, usize),
        s: usize,
    ) -> Result<(f64, f64)> {
        let tb = Instant::now();
        let b = self.model.prepare(refs, ph, pw, self.cfg.training.chunks)?;
        let loss = self.model.loss_and_grad_with(&b, &mut self.work);
        let grad = self.work.grad.as_ref().context("no gradient")?;
        let finite = loss.is_finite()
            && grad
                .tensors()
                .iter()
                .all(|g| g.iter().all(|v| v.is_finite()));
        if !finite {
            bail!(
                "NaN/inf in the training loss or gradient at stage {s}, epoch {}, batch {} (loss {loss}); the last good checkpoint is {}",
                self.pos.epoch,
                self.pos.batch,
                if self.ckpt_path.exists() { self.ckpt_path.display().to_string() } else { "none (no checkpoint written yet)".into() }
            );
        }
        opt.step(self.model.params_mut(), &grad.tensors());
        let secs = tb.elapsed().as_secs_f64();
        Ok((-loss / std::f64::consts::LN_2, b.cells() as f64 / secs))
    }

    /// After stage `s`: L-BFGS fine-tuning of the MCGSM, the validation score (a worse one
    /// restores the stage-start model and stops), the next position and its checkpoint.
    pub(crate) fn end_of_stage(&mut self, s: usize) -> Result<()> {
        let (cfg, t) = (self.cfg, &self.cfg.training);
        let st = &t.stages[s];
        let recent: Vec<f64> = self
            .log_rows
            .iter()
            .rev()
            .take(20)
            .map(|r| r.bits_per_px)
            .collect();
        self.say(&format!(
            "stage {}/{} done: last batches {:.4} bit/px",
            s + 1,
            t.stages.len(),
            recent.iter().sum::<f64>() / recent.len().max(1) as f64
        ));
        if cfg.finetune.enabled {
            self.finetune(cfg.finetune.patch.unwrap_or(st.patch), s as u64 + 1)?;
        }
        if !self.valid.is_empty() {
            let v = score_images(&self.model, &self.valid, cfg.evaluation.tile)?.bits_per_px;
            self.say(&format!("validation after stage {}: {v:.4} bit/px", s + 1));
            if self.pos.best_valid.is_some_and(|b| v < b) {
                self.say("validation got worse: restoring the previous stage's model and stopping");
                self.model = self
                    .before_stage
                    .take()
                    .context("no saved model from before this stage")?;
                self.pos.stopped = true;
            } else {
                self.pos.best_valid = Some(v);
            }
        }
        self.pos.stage += 1;
        self.pos.epoch = 0;
        self.pos.batch = 0;
        self.pos.log_rows = self.log_rows.len();
        self.pos.train_seconds = self.seconds();
        write_log(&self.log_path, &self.log_rows)?;
        save_stage_end(&self.ckpt_path, &self.model, t, &self.pos)
    }

    /// The test score, then the model file and `summary.json` (evaluated before anything is
    /// written: a failed evaluation leaves no model without summary; the trained state is in
    /// the checkpoint).
    pub(crate) fn finish(self) -> Result<Outcome> {
        let cfg = self.cfg;
        let train_seconds = self.seconds();
        let model_path = self.out.join("model.safetensors");
        write_log(&self.log_path, &self.log_rows)?;
        let te = Instant::now();
        let (test_score, patch_score) = match (&self.dc, self.canvas) {
            (Some((dc_train, dc_test)), Some(_)) => {
                let p = score_patches(&self.model, &self.test, dc_train, dc_test)?;
                (p.score.clone(), Some(p))
            }
            _ => (
                score_images(&self.model, &self.test, cfg.evaluation.tile)?,
                None,
            ),
        };
        let eval_seconds = te.elapsed().as_secs_f64();
        self.say(&format!(
            "test: {:.4} ± {:.4} bit/px over {} tiles",
            test_score.bits_per_px, test_score.sem, test_score.tiles
        ));
        let outcome = Outcome {
            experiment: cfg.name.clone(),
            model_kind: format!("{:?}", cfg.model.kind).to_lowercase(),
            seed: cfg.seed,
            parameters: self.model.num_params(),
            train_seconds,
            eval_seconds,
            test: test_score,
            patches: patch_score,
            finetune: self.pos.finetune.clone(),
            stopped_early: self.pos.stopped,
            model_file: model_path.display().to_string(),
            git_commit: crate::io::provenance::git_commit(),
            cpu: crate::io::provenance::cpu_model(),
            threads: rayon::current_num_threads(),
            config: cfg.clone(),
        };
        write_atomic(&model_path, &to_safetensors(&self.model)?)?;
        if let Err(e) = write_atomic(
            &self.out.join("summary.json"),
            serde_json::to_string_pretty(&outcome)?.as_bytes(),
        ) {
            let _ = std::fs::remove_file(&model_path);
            return Err(e);
        }
        let _ = std::fs::remove_file(&self.stage_start_path);
        Ok(outcome)
    }
}

/// A new run's model: `model.init_from`, or fresh parameters with whitening fitted to `train`.
fn initial_model(cfg: &Experiment, train: &[GrayImage]) -> Result<Ride<f32>> {
    let mc = &cfg.model;
    let nb = Neighbourhood::causal(mc.nb_size)?;
    if let Some(p) = &mc.init_from {
        let m = crate::io::modelfile::load(p)
            .with_context(|| format!("model.init_from = {}", p.display()))?;
        check_init_from(cfg, &m, &nb)
            .with_context(|| format!("model.init_from = {}", p.display()))?;
        eprintln!(
            "[{}] starting from {} ({} layers)",
            cfg.name,
            p.display(),
            m.layers.len()
        );
        return Ok(m);
    }
    let wh = fit_whitening(&nb, train, mc.whitening_samples, cfg.seed)?;
    let hiddens: &[usize] = if mc.kind == ModelKind::Ride {
        &mc.hiddens
    } else {
        &[]
    };
    let mixture = MixtureSize {
        components: mc.components,
        scales: mc.scales,
        features: mc.features,
        linear_features: mc.linear_features,
        means: mc.means,
    };
    let mut m = Ride::<f32>::init(
        nb,
        wh,
        hiddens,
        mc.extended,
        mixture,
        &mut rng_for(cfg.seed, Purpose::Init, 0, 0),
    );
    m.preprocessing = cfg.data.preprocessing();
    Ok(m)
}
