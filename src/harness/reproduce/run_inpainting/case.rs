//! One inpainting case: the baselines and both chains on one image, scored, with the chains'
//! convergence and the case's row of the figure.

use super::super::table::TableConfig;
use super::super::Options;
use super::config::{parse_target, Case, InpaintingConfig};
use super::{ConvergenceRow, FillRow};
use crate::io::plot::{line_plot, LinePlot, Panel, Series};
use crate::tasks::inpaint::{
    harmonic_fill, inpaint, mean_fill, score_fill, ssim_over, Checkpointing, Geometry,
    InpaintOptions,
};
use crate::train::dataset::load_data;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

fn psnr(a: &[f64], b: &[f64], peak: f64) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len().max(1) as f64;
    10.0 * (peak * peak / mse).log10()
}

/// What one case produced: its rows, its chains' convergence and its figure row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct CaseResult {
    pub(super) config_hash: String,
    pub(super) rows: Vec<FillRow>,
    pub(super) convergence: Vec<ConvergenceRow>,
    pub(super) panels: Vec<Panel>,
}

/// What a case's chains and scores need: its models, image, geometry and chain options.
struct CaseSetup {
    ride: crate::model::ride::Ride<f32>,
    mcgsm: crate::model::ride::Ride<f32>,
    img: crate::io::images::GrayImage,
    geo: Geometry,
    io: InpaintOptions,
    /// the image's 0.1 and 99.9 percentiles: the figure's gray range and the PSNR/SSIM peak
    lo: f64,
    hi: f64,
}

impl CaseSetup {
    fn new(cfg: &InpaintingConfig, case: &Case, opts: &Options) -> Result<Self> {
        let tcfg = TableConfig::load(&opts.experiments.join(format!("{}.toml", case.table)))?;
        let table_out = opts.out.join(&case.table);
        let t = tcfg.resolve(&opts.scale, &opts.experiments, &table_out)?;
        let model_of = |row: &str| -> Result<crate::model::ride::Ride<f32>> {
            let p = super::model_path(case, row, opts);
            if !p.is_file() {
                bail!(
                    "inpainting case '{}': {} does not exist — run the table '{}' first (ride reproduce --only {})",
                    case.id,
                    p.display(),
                    case.table,
                    case.table
                );
            }
            crate::io::modelfile::load(&p)
        };
        let ride = model_of(&case.ride)?;
        let mcgsm = model_of(&case.mcgsm)?;
        let mut test = load_data(&t.base, &opts.data_dir)?.test;
        let n = test.len();
        if case.test_image >= n {
            bail!(
                "inpainting case '{}': test image {} of '{}' does not exist ({n} test images)",
                case.id,
                case.test_image,
                case.table,
            );
        }
        let img = test.swap_remove(case.test_image);
        let io = InpaintOptions {
            hole: (cfg.hole, cfg.hole),
            center: None,
            context: cfg.context,
            sweeps: cfg.sweeps,
            seed: cfg.seed,
            candidates: cfg.candidates,
            block: cfg.block,
            window: cfg.window,
            stride: cfg.stride,
            target: parse_target(case.target.as_deref().unwrap_or(&cfg.target))?,
            ..Default::default()
        };
        let geo = Geometry::new(&ride, img.h, img.w, io.hole, None, cfg.context)
            .with_context(|| format!("inpainting case '{}' ({})", case.id, img.name))?;
        let lo = crate::harness::reproduce::run_table::percentile(&img.data, 0.1);
        let hi = crate::harness::reproduce::run_table::percentile(&img.data, 99.9);
        Ok(Self {
            ride,
            mcgsm,
            img,
            geo,
            io,
            lo,
            hi,
        })
    }

    /// The hole's pixels of a whole image, row by row.
    fn hole_px(&self, x: &[f64]) -> Vec<f64> {
        let (r, w) = (self.geo.hole, self.img.w);
        (r.top..r.top + r.h)
            .flat_map(|i| x[i * w + r.left..i * w + r.left + r.w].iter().copied())
            .collect()
    }

    /// A panel of the figure: the hole and `cfg.show_margin` pixels around it of image `x`.
    fn panel(&self, cfg: &InpaintingConfig, title: String, x: &[f64]) -> Panel {
        let (m, r, h, w) = (cfg.show_margin, self.geo.hole, self.img.h, self.img.w);
        let (t, l) = (r.top.saturating_sub(m), r.left.saturating_sub(m));
        let (b, rt) = ((r.top + r.h + m).min(h), (r.left + r.w + m).min(w));
        Panel {
            title,
            image: (t..b)
                .flat_map(|i| x[i * w + l..i * w + rt].iter().copied())
                .collect(),
            h: b - t,
            w: rt - l,
            range: (self.lo, self.hi),
        }
    }

    /// A fill's row of `inpainting.csv`, scored by the case's RIDE against the true pixels.
    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        cfg: &InpaintingConfig,
        case: &Case,
        opts: &Options,
        hash: &str,
        method: &str,
        filled: &[f64],
        chain: Option<(f64, usize)>,
        seconds: f64,
    ) -> Result<FillRow> {
        let (img, geo) = (&self.img, &self.geo);
        let s = score_fill(&self.ride, filled, &img.data, geo)?;
        let peak = self.hi - self.lo;
        Ok(FillRow {
            case: case.id.clone(),
            image: img.name.clone(),
            method: method.into(),
            hole_bits_per_px: s.hole_bits_per_px,
            crop_bits_per_px: s.crop_bits_per_px,
            psnr_db: psnr(&self.hole_px(filled), &self.hole_px(&img.data), peak),
            ssim: ssim_over(filled, &img.data, img.h, img.w, geo.hole, peak),
            acceptance: chain.map(|c| c.0),
            sweeps: chain.map_or(0, |c| c.1),
            target: if chain.is_some() {
                self.io.target.name().into()
            } else {
                String::new()
            },
            seconds,
            hole: cfg.hole,
            seed: cfg.seed,
            scale: opts.scale.clone(),
            git_commit: crate::io::provenance::git_commit(),
            config_hash: hash.into(),
        })
    }
}

/// One case: the baselines and both chains on one image, scored; its convergence figure.
pub(super) fn run_case(
    name: &str,
    cfg: &InpaintingConfig,
    case: &Case,
    opts: &Options,
    hash: &str,
    out: &std::path::Path,
) -> Result<CaseResult> {
    let (mut rows, mut convergence) = (vec![], vec![]);
    let hash = hash.to_string();
    let setup = CaseSetup::new(cfg, case, opts)?;
    let CaseSetup {
        ride,
        mcgsm,
        img,
        geo,
        io,
        lo,
        ..
    } = &setup;
    let (h, w, lo) = (img.h, img.w, *lo);
    let mut fills: Vec<(String, Vec<f64>, Option<f64>, f64)> = vec![];
    let t0 = Instant::now();
    let mf = mean_fill(&img.data, geo, cfg.mean_ring);
    fills.push(("mean fill".into(), mf, None, t0.elapsed().as_secs_f64()));
    let t0 = Instant::now();
    let hf = harmonic_fill(&img.data, geo);
    fills.push(("harmonic fill".into(), hf, None, t0.elapsed().as_secs_f64()));
    let mut curves = vec![];
    for (label, m) in CHAIN_LABELS.into_iter().zip([mcgsm, ride]) {
        eprintln!(
            "[{name}] {}: {label} ({} sweeps, {} target)",
            case.id,
            cfg.sweeps,
            io.target.name()
        );
        let t0 = Instant::now();
        // the chain saves its state every minute: a killed run resumes it
        let io = InpaintOptions {
            progress: Some(format!("[{name}] {}: {label}", case.id)),
            checkpoint: Some(Checkpointing {
                path: chain_state_path(out, &case.id, label),
                every_seconds: 60.0,
            }),
            ..io.clone()
        };
        let r = inpaint(m, &img.data, h, w, &io)
            .with_context(|| format!("inpainting case '{}', {label}", case.id))?;
        for (k, b) in r.hole_bits.iter().enumerate() {
            convergence.push(ConvergenceRow {
                case: case.id.clone(),
                method: label.into(),
                sweep: k,
                hole_bits_per_px: *b,
                acceptance: k.checked_sub(1).and_then(|j| r.acceptance.get(j).copied()),
            });
        }
        curves.push(Series {
            label: format!("{label} (under its own model)"),
            x: (0..r.hole_bits.len()).map(|k| k as f64).collect(),
            y: r.hole_bits.clone(),
            ..Default::default()
        });
        let acc = if r.acceptance.is_empty() {
            None
        } else {
            Some(r.acceptance.iter().sum::<f64>() / r.acceptance.len() as f64)
        };
        // the chain's time, that of the runs before a resumption included
        let earlier = match r.resumed_after {
            0 => 0.0,
            k => r.init_seconds + r.sweep_seconds[..k].iter().sum::<f64>(),
        };
        fills.push((
            label.into(),
            r.image,
            acc,
            t0.elapsed().as_secs_f64() + earlier,
        ));
    }
    if cfg.sweeps > 0 {
        line_plot(
            &LinePlot {
                title: format!("{}: hole log-likelihood per MH sweep", case.id),
                x_label: "sweep".into(),
                y_label: "hole log-likelihood rate [bit/px]".into(),
                series: curves,
                log_x: false,
                points: cfg.sweeps <= 20,
            },
            &out.join(format!("convergence_{}", case.id)),
        )?;
    }
    let mut panels = vec![setup.panel(cfg, format!("{}: original", case.id), &img.data)];
    let mut masked = img.data.clone();
    let r = geo.hole;
    for i in r.top..r.top + r.h {
        masked[i * w + r.left..i * w + r.left + r.w].fill(lo);
    }
    panels.push(setup.panel(cfg, "masked".into(), &masked));
    for (method, filled, acc, secs) in fills {
        let chain = acc.map(|a| (a, cfg.sweeps));
        rows.push(setup.score(cfg, case, opts, &hash, &method, &filled, chain, secs)?);
        panels.push(setup.panel(cfg, method, &filled));
    }
    let mut truth = setup.score(
        cfg,
        case,
        opts,
        &hash,
        "original (true pixels)",
        &img.data,
        None,
        0.0,
    )?;
    truth.psnr_db = f64::INFINITY;
    truth.ssim = 1.0;
    rows.push(truth);
    Ok(CaseResult {
        config_hash: hash,
        rows,
        convergence,
        panels,
    })
}

/// Both chains' fills after `k` sweeps, for each `k` of `cfg.early_sweeps` below `cfg.sweeps`,
/// scored as the final fills, so that the rows say what the remaining sweeps changed. Each
/// chain is replayed from its start with the same options for `k` sweeps: the same chain's
/// first `k` sweeps (checked against the hole log-likelihood its kept convergence row has).
/// Also returns RIDE's fill after each `k` as a panel of the figure.
pub(super) fn early_rows(
    cfg: &InpaintingConfig,
    case: &Case,
    opts: &Options,
    hash: &str,
    kept: &CaseResult,
) -> Result<(Vec<FillRow>, Vec<Panel>)> {
    let ks: Vec<usize> = early_sweeps(cfg);
    if ks.is_empty() {
        return Ok((vec![], vec![]));
    }
    let setup = CaseSetup::new(cfg, case, opts)?;
    let (mut rows, mut panels) = (vec![], vec![]);
    for &k in &ks {
        for (label, m) in CHAIN_LABELS.into_iter().zip([&setup.mcgsm, &setup.ride]) {
            let t0 = Instant::now();
            let io = InpaintOptions {
                sweeps: k,
                ..setup.io.clone()
            };
            let img = &setup.img;
            let r = inpaint(m, &img.data, img.h, img.w, &io)
                .with_context(|| format!("inpainting case '{}', {label}, {k} sweeps", case.id))?;
            let kept_bits = kept
                .convergence
                .iter()
                .find(|c| c.method == label && c.sweep == k)
                .map(|c| c.hole_bits_per_px);
            if kept_bits != r.hole_bits.last().copied() {
                bail!(
                    "inpainting case '{}', {label}: the replay of the first {k} sweeps ends at {:?} bit/px, the kept chain was at {kept_bits:?} after {k} sweeps (the chains are not deterministic?)",
                    case.id,
                    r.hole_bits.last()
                );
            }
            let acc = r.acceptance.iter().sum::<f64>() / r.acceptance.len().max(1) as f64;
            rows.push(setup.score(
                cfg,
                case,
                opts,
                hash,
                label,
                &r.image,
                Some((acc, k)),
                t0.elapsed().as_secs_f64(),
            )?);
            // RIDE's chain (CHAIN_LABELS[1]) is the one the figure shows after the early sweeps
            if label == CHAIN_LABELS[1] {
                panels.push(setup.panel(cfg, format!("{label}, {k} sweeps"), &r.image));
            }
        }
    }
    Ok((rows, panels))
}

/// The sweep counts of `early_rows`: those of the config below its `sweeps`.
pub(super) fn early_sweeps(cfg: &InpaintingConfig) -> Vec<usize> {
    let mut ks: Vec<usize> = cfg
        .early_sweeps
        .iter()
        .copied()
        .filter(|&k| k < cfg.sweeps)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// The MH chains of a case, in the order they run (the MCGSM's, then RIDE's).
pub(crate) const CHAIN_LABELS: [&str; 2] = ["MCGSM fill", "RIDE fill"];

/// Where a case's chain keeps its state while it runs (removed once the case is kept).
pub(crate) fn chain_state_path(
    out: &std::path::Path,
    case: &str,
    label: &str,
) -> std::path::PathBuf {
    let slug: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    out.join("cases").join(format!("{case}.{slug}.chain.json"))
}
