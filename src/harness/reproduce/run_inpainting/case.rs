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
    let test = load_data(&t.base, &opts.data_dir)?.test;
    let img = test.get(case.test_image).with_context(|| {
        format!(
            "inpainting case '{}': test image {} of '{}' does not exist ({} test images)",
            case.id,
            case.test_image,
            case.table,
            test.len()
        )
    })?;
    let (h, w) = (img.h, img.w);
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
    let geo = Geometry::new(&ride, h, w, io.hole, None, cfg.context)
        .with_context(|| format!("inpainting case '{}' ({})", case.id, img.name))?;
    let lo = crate::harness::reproduce::run_table::percentile(&img.data, 0.1);
    let hi = crate::harness::reproduce::run_table::percentile(&img.data, 99.9);
    let hole_px = |x: &[f64]| -> Vec<f64> {
        let r = geo.hole;
        (r.top..r.top + r.h)
            .flat_map(|i| x[i * w + r.left..i * w + r.left + r.w].iter().copied())
            .collect()
    };
    let truth = hole_px(&img.data);
    let mut fills: Vec<(String, Vec<f64>, Option<f64>, f64)> = vec![];
    let t0 = Instant::now();
    let mf = mean_fill(&img.data, &geo, cfg.mean_ring);
    fills.push(("mean fill".into(), mf, None, t0.elapsed().as_secs_f64()));
    let t0 = Instant::now();
    let hf = harmonic_fill(&img.data, &geo);
    fills.push(("harmonic fill".into(), hf, None, t0.elapsed().as_secs_f64()));
    let mut curves = vec![];
    for (label, m) in CHAIN_LABELS.into_iter().zip([&mcgsm, &ride]) {
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
    let mut panels = vec![];
    let show = |x: &[f64]| -> (Vec<f64>, usize, usize) {
        let m = cfg.show_margin;
        let r = geo.hole;
        let (t, l) = (r.top.saturating_sub(m), r.left.saturating_sub(m));
        let (b, rt) = ((r.top + r.h + m).min(h), (r.left + r.w + m).min(w));
        let v = (t..b)
            .flat_map(|i| x[i * w + l..i * w + rt].iter().copied())
            .collect();
        (v, b - t, rt - l)
    };
    let (v, ph, pw) = show(&img.data);
    panels.push(Panel {
        title: format!("{}: original", case.id),
        image: v,
        h: ph,
        w: pw,
        range: (lo, hi),
    });
    let mut masked = img.data.clone();
    let r = geo.hole;
    for i in r.top..r.top + r.h {
        masked[i * w + r.left..i * w + r.left + r.w].fill(lo);
    }
    let (v, ..) = show(&masked);
    panels.push(Panel {
        title: "masked".into(),
        image: v,
        h: ph,
        w: pw,
        range: (lo, hi),
    });
    for (method, filled, acc, secs) in fills {
        let s = score_fill(&ride, &filled, &img.data, &geo)?;
        rows.push(FillRow {
            case: case.id.clone(),
            image: img.name.clone(),
            method: method.clone(),
            hole_bits_per_px: s.hole_bits_per_px,
            crop_bits_per_px: s.crop_bits_per_px,
            psnr_db: psnr(&hole_px(&filled), &truth, hi - lo),
            ssim: ssim_over(&filled, &img.data, h, w, geo.hole, hi - lo),
            acceptance: acc,
            sweeps: if acc.is_some() { cfg.sweeps } else { 0 },
            target: if acc.is_some() {
                io.target.name().into()
            } else {
                String::new()
            },
            seconds: secs,
            hole: cfg.hole,
            seed: cfg.seed,
            scale: opts.scale.clone(),
            git_commit: crate::io::provenance::git_commit(),
            config_hash: hash.clone(),
        });
        let (v, ..) = show(&filled);
        panels.push(Panel {
            title: method,
            image: v,
            h: ph,
            w: pw,
            range: (lo, hi),
        });
    }
    let s = score_fill(&ride, &img.data, &img.data, &geo)?;
    rows.push(FillRow {
        case: case.id.clone(),
        image: img.name.clone(),
        method: "original (true pixels)".into(),
        hole_bits_per_px: s.hole_bits_per_px,
        crop_bits_per_px: s.crop_bits_per_px,
        psnr_db: f64::INFINITY,
        ssim: 1.0,
        acceptance: None,
        sweeps: 0,
        target: String::new(),
        seconds: 0.0,
        hole: cfg.hole,
        seed: cfg.seed,
        scale: opts.scale.clone(),
        git_commit: crate::io::provenance::git_commit(),
        config_hash: hash.clone(),
    });
    Ok(CaseResult {
        config_hash: hash,
        rows,
        convergence,
        panels,
    })
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
