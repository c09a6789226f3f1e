//! L-BFGS fine-tuning of the MCGSM alone (docs/MODEL.md §5): SLSTM frozen, the MCGSM fitted to
//! precomputed top-layer features with argmin's L-BFGS (More–Thuente line search), early
//! stopping on held-out cells checked every few iterations; the best parameters are kept.
//! Also the whole training of the MCGSM baseline.

use crate::data::{self, rng_for, Purpose};
use crate::io::images::GrayImage;
use crate::io::progress::Progress;
use crate::model::mcgsm::{Mcgsm, McgsmWork};
use crate::model::ride::Ride;
use crate::train::config::Experiment;
use crate::train::lbfgs_segments::{finite_pair, run_key, state_path, SegmentState, Segments};
use crate::train::{config_hash, NUMERICS_VERSION};
use anyhow::{anyhow, Result};
use argmin::core::{
    CostFunction, Error, Executor, Gradient, IterState, Problem, Solver, State, TerminationReason,
    TerminationStatus, KV,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Cells for the MCGSM: inputs `[rows, D]`, outputs `[rows]`.
#[derive(Clone, Debug, Default)]
pub struct Cells {
    pub u: Vec<f64>,
    pub y: Vec<f64>,
}

impl Cells {
    pub fn rows(&self) -> usize {
        self.y.len()
    }
}

const BLOCK: usize = 4096;

/// Mean negative log-likelihood (nats, MCGSM only) and, if asked, its gradient (flat).
/// Blocks of rows run in parallel, each thread reusing its buffers; the per-block sums are
/// added in block order, so the result does not depend on the thread count.
pub fn mean_nll(m: &Mcgsm<f64>, cells: &Cells, want_grad: bool) -> (f64, Option<Vec<f64>>) {
    let d = m.d();
    let n = cells.rows().max(1);
    let gl = -1.0 / n as f64;
    let parts: Vec<(f64, Option<Vec<f64>>)> = (0..cells.rows().div_ceil(BLOCK))
        .into_par_iter()
        .map_init(
            || (McgsmWork::default(), Vec::new(), Vec::new()),
            |(work, ll, glv), b| {
                let (r0, r1) = (b * BLOCK, ((b + 1) * BLOCK).min(cells.rows()));
                let (u, y) = (&cells.u[r0 * d..r1 * d], &cells.y[r0..r1]);
                ll.resize(r1 - r0, 0.0);
                m.forward(u, y, ll, work, want_grad);
                let grad = want_grad.then(|| {
                    let mut g = m.zeros_like();
                    glv.resize(r1 - r0, gl);
                    m.backward(u, y, glv, work, &mut g, None);
                    flatten(&g)
                });
                (ll.iter().sum(), grad)
            },
        )
        .collect();
    let total: f64 = parts.iter().map(|p| p.0).sum();
    let grad = want_grad.then(|| {
        let mut flat = vec![0.0; m.num_params()];
        for g in parts.iter().filter_map(|p| p.1.as_ref()) {
            flat.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        flat
    });
    (-total / n as f64, grad)
}

pub fn flatten(m: &Mcgsm<f64>) -> Vec<f64> {
    m.tensors()
        .into_iter()
        .flat_map(|t| t.2.iter().copied())
        .collect()
}

pub fn unflatten(template: &Mcgsm<f64>, p: &[f64]) -> Mcgsm<f64> {
    let mut m = template.clone();
    let mut k = 0;
    for t in m.tensors_mut() {
        let n = t.len();
        t.copy_from_slice(&p[k..k + n]);
        k += n;
    }
    m
}

/// One evaluation of the objective: (parameters, cost, gradient).
type Evaluation = (Vec<f64>, f64, Vec<f64>);

struct Objective<'a> {
    template: Mcgsm<f64>,
    cells: &'a Cells,
    /// last evaluation (param, cost, gradient): line searches ask for both at one point
    cache: Mutex<Option<Evaluation>>,
}

impl Objective<'_> {
    fn eval(&self, p: &[f64]) -> Result<(f64, Vec<f64>), Error> {
        if let Ok(guard) = self.cache.lock() {
            if let Some((q, c, g)) = guard.as_ref() {
                if q.as_slice() == p {
                    return Ok((*c, g.clone()));
                }
            }
        }
        let (c, g) = mean_nll(&unflatten(&self.template, p), self.cells, true);
        let g = g.ok_or_else(|| anyhow!("gradient missing"))?;
        if !c.is_finite() || g.iter().any(|v| !v.is_finite()) {
            // an infinite cost makes the line search back off instead of accepting garbage
            return Ok((
                f64::INFINITY,
                g.iter()
                    .map(|v| if v.is_finite() { *v } else { 0.0 })
                    .collect(),
            ));
        }
        if let Ok(mut guard) = self.cache.lock() {
            *guard = Some((p.to_vec(), c, g.clone()));
        }
        Ok((c, g))
    }
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, Error> {
        Ok(self.eval(p)?.0)
    }
}

impl Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, Error> {
        Ok(self.eval(p)?.1)
    }
}

type St = IterState<Vec<f64>, Vec<f64>, (), (), (), f64>;

/// Wraps a solver: shows progress (iteration, training cost, held-out cost, ETA) and, with
/// held-out cells, every `every` iterations evaluates the held-out cost, remembers the best
/// parameters and stops once `patience` checks in a row (at least 1) did not improve on it.
struct EarlyStopping<'a, S> {
    inner: S,
    template: Mcgsm<f64>,
    valid: Option<&'a Cells>,
    every: u64,
    patience: u64,
    best: Option<(f64, Vec<f64>)>,
    stop: bool,
    checks: Vec<(u64, f64)>,
    progress: Progress,
    /// iterations done by earlier segments
    offset: u64,
}

impl<'a, O, S: Solver<O, St>> Solver<O, St> for EarlyStopping<'a, S> {
    fn name(&self) -> &str {
        "L-BFGS with early stopping"
    }
    fn init(&mut self, problem: &mut Problem<O>, state: St) -> Result<(St, Option<KV>), Error> {
        self.inner.init(problem, state)
    }
    fn next_iter(
        &mut self,
        problem: &mut Problem<O>,
        state: St,
    ) -> Result<(St, Option<KV>), Error> {
        let (state, kv) = self.inner.next_iter(problem, state)?;
        let iter = self.offset + state.get_iter() + 1;
        if let (Some(valid), true) = (self.valid, iter.is_multiple_of(self.every)) {
            if let Some(p) = state.get_param() {
                let v = mean_nll(&unflatten(&self.template, p), valid, false).0;
                self.checks.push((iter, v));
                match &self.best {
                    Some((b, _)) if v >= *b || !v.is_finite() => {
                        self.stop = self.patience <= 1
                            || checks_without_gain(&self.checks, *b) >= self.patience
                    }
                    _ => self.best = Some((v, p.clone())),
                }
            }
        }
        let mut msg = format!("train {:.5} nats", state.get_cost());
        if let Some((it, v)) = self.checks.last() {
            msg += &format!(", held-out {v:.5} (iteration {it})");
        }
        self.progress.set(iter, &msg);
        Ok((state, kv))
    }
    fn terminate(&mut self, state: &St) -> TerminationStatus {
        if self.stop {
            return TerminationStatus::Terminated(TerminationReason::SolverExit(
                "held-out cost increased".into(),
            ));
        }
        self.inner.terminate(state)
    }
}

/// How many of the latest held-out checks in a row are worse than `best` (the held-out cost is
/// not monotone under L-BFGS: one check can be worse and the next better again); the check that
/// set `best` ends the run. It follows from the checks alone, so a run resumed between segments
/// counts on.
fn checks_without_gain(checks: &[(u64, f64)], best: f64) -> u64 {
    checks
        .iter()
        .rev()
        .take_while(|(_, v)| *v > best || v.is_nan())
        .count() as u64
}

fn termination(state: &St) -> String {
    state
        .get_termination_reason()
        .map_or("unknown".into(), |r| r.text().to_string())
}

/// What fine-tuning did.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneReport {
    pub iterations: u64,
    pub train_nll_before: f64,
    pub train_nll_after: f64,
    pub valid_nll_before: Option<f64>,
    pub valid_nll_after: Option<f64>,
    pub stopped_by: String,
    /// machine time of the segments run before a resume (s)
    #[serde(skip_serializing_if = "is_zero", default)]
    pub earlier_seconds: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Fits the MCGSM to `train` with L-BFGS (≤ `max_iter` iterations, `history` corrections),
/// early-stopping on `valid` every `every` iterations, with progress under `label`. Returns
/// the fitted model (the best held-out parameters when `valid` is given). With `segments`, the
/// run goes in resumable segments (`train::lbfgs_segments`); without, it is one L-BFGS run.
#[allow(clippy::too_many_arguments)]
pub fn lbfgs(
    label: &str,
    m: &Mcgsm<f64>,
    train: &Cells,
    valid: Option<&Cells>,
    max_iter: u64,
    history: usize,
    every: usize,
    patience: u64,
    segments: Option<&Segments>,
) -> Result<(Mcgsm<f64>, FinetuneReport)> {
    let t0 = Instant::now();
    let say = |s: &str| eprintln!("{label}: {s}");
    let p0 = flatten(m);
    let before = mean_nll(m, train, false).0;
    let vbefore = valid.map(|v| mean_nll(m, v, false).0);
    let every = every.max(1) as u64;
    let seg_len = segments.map_or(max_iter, |s| s.every.max(1));
    let key = run_key(
        &p0,
        (train.rows(), valid.map_or(0, Cells::rows)),
        &format!(
            "{max_iter}/{history}/{every}/{seg_len}/{}{}",
            segments.map_or("", |s| &s.context),
            // only when set, so the states of runs without it keep their keys
            if patience > 1 {
                format!("/patience {patience}")
            } else {
                String::new()
            }
        ),
    );
    let fresh = SegmentState {
        key: key.clone(),
        done: 0,
        param: p0.clone(),
        best_valid: vbefore.and_then(|c| finite_pair(c, &p0)),
        best_train: None,
        checks: vec![],
        finished: None,
        seconds: 0.0,
    };
    let mut st = match segments {
        Some(seg) => seg.load(&key, &say)?.unwrap_or(fresh),
        None => fresh,
    };
    let earlier_seconds = st.seconds;
    let mut progress = Progress::counting(label, max_iter, ("iteration", "iterations"));
    progress.skip(st.done);
    while st.finished.is_none() && st.done < max_iter {
        let objective = Objective {
            template: m.clone(),
            cells: train,
            cache: Mutex::new(None),
        };
        let lbfgs = LBFGS::new(MoreThuenteLineSearch::new(), history.max(1))
            .with_tolerance_cost(1e-10)?
            .with_tolerance_grad(1e-9)?;
        let solver = EarlyStopping {
            inner: lbfgs,
            template: m.clone(),
            valid,
            every,
            patience,
            best: st.best_valid.take(),
            stop: false,
            checks: std::mem::take(&mut st.checks),
            progress,
            offset: st.done,
        };
        let n = seg_len.min(max_iter - st.done);
        let res = Executor::new(objective, solver)
            .configure(|s| s.param(st.param.clone()).max_iters(n))
            .run()?;
        let state = &res.state;
        st.done += state.get_iter();
        if let Some(p) = state.get_param() {
            st.param = p.clone();
        }
        if let Some(p) = state.get_best_param() {
            if st
                .best_train
                .as_ref()
                .is_none_or(|b| state.get_best_cost() < b.0)
            {
                st.best_train = finite_pair(state.get_best_cost(), p);
            }
        }
        let reached_max = matches!(
            state.get_termination_reason(),
            Some(TerminationReason::MaxItersReached)
        );
        if !reached_max || st.done >= max_iter {
            st.finished = Some(termination(state));
        }
        let solver = res.solver;
        (st.best_valid, st.checks, progress) = (solver.best, solver.checks, solver.progress);
        st.seconds = earlier_seconds + t0.elapsed().as_secs_f64();
        if let Some(seg) = segments {
            seg.save(&st)?;
        }
    }
    progress.finish();
    let best = match valid {
        Some(v) => {
            // the final parameters compete with the best checked ones on held-out data
            let final_v = mean_nll(&unflatten(m, &st.param), v, false).0;
            match st.best_valid {
                Some((b, p)) if b <= final_v => p,
                _ => st.param,
            }
        }
        None => st.best_train.map_or(p0, |b| b.1),
    };
    let fitted = unflatten(m, &best);
    let after = mean_nll(&fitted, train, false).0;
    let vafter = valid.map(|v| mean_nll(&fitted, v, false).0);
    if let Some(seg) = segments {
        seg.remove();
    }
    Ok((
        fitted,
        FinetuneReport {
            iterations: st.done,
            train_nll_before: before,
            train_nll_after: after,
            valid_nll_before: vbefore,
            valid_nll_after: vafter,
            stopped_by: st.finished.unwrap_or_else(|| "unknown".into()),
            earlier_seconds,
        },
    ))
}

/// Cells for fitting the MCGSM: top-layer features of random patches of the training images.
pub(crate) fn finetune_cells(
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
    let d = model.mcgsm.d();
    cells.y.truncate(count);
    cells.u.truncate(count * d);
    Ok(cells)
}

pub(crate) fn split_cells(c: Cells, train: usize, d: usize) -> (Cells, Cells) {
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
pub(crate) fn run_finetune(
    cfg: &Experiment,
    model: &mut Ride<f32>,
    images: &[GrayImage],
    patch: (usize, usize),
    stream: u64,
    out: &Path,
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
    let (train, valid) = split_cells(cells, f.cells, model.mcgsm.d());
    let valid = (valid.rows() > 0).then_some(valid);
    let t0 = Instant::now();
    let label = if stream == 0 {
        "L-BFGS".to_string()
    } else {
        format!("L-BFGS after stage {stream}")
    };
    let segments = (f.segment > 0).then(|| Segments {
        path: state_path(out, stream),
        every: f.segment,
        context: format!("{}/{stream}/{NUMERICS_VERSION}", config_hash(cfg)),
    });
    let (fitted, report) = lbfgs(
        &label,
        &model.mcgsm.cast(),
        &train,
        valid.as_ref(),
        f.max_iter,
        f.history,
        f.check_every,
        f.patience,
        segments.as_ref(),
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

#[cfg(test)]
mod tests {
    use super::checks_without_gain;

    #[test]
    fn checks_without_gain_counts_the_latest_run_of_worse_checks() {
        // best 1.0 reached at iteration 10; 20 was worse, 30 better than 20 but not than best
        let checks = [(5, 1.2), (10, 1.0), (15, 0.9), (20, 1.1), (25, 0.95)];
        assert_eq!(checks_without_gain(&checks, 0.9), 2);
        assert_eq!(checks_without_gain(&checks[..4], 0.9), 1);
        // the best came from before the first check (the starting point)
        assert_eq!(checks_without_gain(&checks, 0.5), 5);
        assert_eq!(checks_without_gain(&[(5, f64::NAN)], 1.0), 1);
        assert_eq!(checks_without_gain(&[], 1.0), 0);
    }
}
