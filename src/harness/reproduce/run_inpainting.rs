//! The inpainting experiment of `ride reproduce` (docs/MODEL.md §7, issue 6): for test images of a
//! table's data set, a square hole filled three ways — the mean of a ring of observed pixels,
//! MH inpainting with the table's MCGSM, MH inpainting with its RIDE — each scored by the RIDE
//! model (log-likelihood of the filled hole) and by PSNR against the true pixels; a CSV and a
//! figure (original / masked / fills).

use super::table::TableConfig;
use super::{fnv, provenance, Options};
use crate::io::files::write_atomic;
use crate::io::plot::{image_grid, Panel};
use crate::io::plot::{line_plot, LinePlot, Series};
use crate::tasks::inpaint::{
    harmonic_fill, inpaint, mean_fill, score_fill, ssim_over, Geometry, InpaintOptions,
};
use crate::train::dataset::load_data;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintingConfig {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub hole: usize,
    /// observed pixels per side of the hole in the evaluation crop (MH target)
    pub context: usize,
    pub sweeps: usize,
    pub candidates: usize,
    pub block: usize,
    pub window: usize,
    pub stride: usize,
    pub seed: u64,
    /// width of the ring of observed pixels the mean fill averages
    pub mean_ring: usize,
    /// pixels shown around the hole in the figure
    pub show_margin: usize,
    pub cases: Vec<Case>,
    /// scale name → overrides of the top-level numbers above
    #[serde(default)]
    pub scale: BTreeMap<String, toml::Table>,
}

/// One image: the `test_image`-th test image of `table` (at the run's scale), filled with the
/// models of rows `ride` and `mcgsm` of that table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub table: String,
    pub test_image: usize,
    pub ride: String,
    pub mcgsm: String,
}

/// One line of `inpainting.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FillRow {
    pub case: String,
    pub image: String,
    pub method: String,
    /// log-likelihood rate of the hole pixels under the case's RIDE model (bit/px, model units)
    pub hole_bits_per_px: f64,
    /// the same over every cell of the evaluation crop
    pub crop_bits_per_px: f64,
    /// PSNR over the hole vs the true pixels, peak = the image's 0.1–99.9 percentile range
    pub psnr_db: f64,
    /// SSIM over the hole vs the true pixels (11×11 Gaussian window, the same dynamic range)
    pub ssim: f64,
    pub acceptance: Option<f64>,
    pub sweeps: usize,
    pub seconds: f64,
    pub hole: usize,
    pub seed: u64,
    pub scale: String,
    pub git_commit: String,
    pub config_hash: String,
}

/// Loads an inpainting config with the overrides of `scale` ("paper": as written).
pub fn load(path: &std::path::Path, scale: &str) -> Result<InpaintingConfig> {
    let text = crate::limits::read_config(path)?;
    let mut t: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if scale != "paper" {
        let s = t
            .get("scale")
            .and_then(|s| s.get(scale))
            .and_then(|s| s.as_table())
            .cloned()
            .with_context(|| format!("{}: no [scale.{scale}] section", path.display()))?;
        for (k, v) in s {
            crate::harness::sweep::set_dotted(&mut t, &k, v)?;
        }
    }
    let cfg: InpaintingConfig = t
        .try_into()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    cfg.validate()
        .with_context(|| format!("{}: invalid inpainting config", path.display()))?;
    Ok(cfg)
}

impl InpaintingConfig {
    /// Every number in range, checked before any table is trained (the cases' rows are
    /// checked by [`validate_cases`]).
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        lim::check("hole", self.hole, 1, lim::MAX_IMAGE_SIDE)?;
        lim::check("context", self.context, 0, lim::MAX_IMAGE_SIDE)?;
        lim::check("sweeps", self.sweeps, 0, lim::MAX_SWEEPS)?;
        lim::check("candidates", self.candidates, 1, lim::MAX_CANDIDATES)?;
        lim::check("block", self.block, 1, lim::MAX_IMAGE_SIDE)?;
        lim::check("stride", self.stride, 1, self.block)?;
        lim::check("window", self.window, self.block, lim::MAX_IMAGE_SIDE)?;
        lim::check("mean_ring", self.mean_ring, 1, lim::MAX_IMAGE_SIDE)?;
        if self.cases.is_empty() {
            bail!("no cases");
        }
        for c in &self.cases {
            crate::train::config::check_name("cases.id", &c.id)?;
        }
        Ok(())
    }
}

/// Each case's table is one of `tables` and has trained rows `ride` and `mcgsm`.
pub fn validate_cases(cfg: &InpaintingConfig, tables: &[super::table::Table]) -> Result<()> {
    for c in &cfg.cases {
        let t = tables
            .iter()
            .find(|t| t.config.name == c.table)
            .with_context(|| {
                format!(
                    "case '{}': table '{}' is not run by this suite",
                    c.id, c.table
                )
            })?;
        for row in [&c.ride, &c.mcgsm] {
            let ok = t
                .rows
                .iter()
                .any(|r| r.id == *row && matches!(r.kind, super::table::RowKind::Train(_)));
            if !ok {
                bail!(
                    "case '{}': table '{}' has no trained row '{row}'",
                    c.id,
                    c.table
                );
            }
        }
    }
    Ok(())
}

fn psnr(a: &[f64], b: &[f64], peak: f64) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len().max(1) as f64;
    10.0 * (peak * peak / mse).log10()
}

/// Rows of `inpainting.csv` per case: mean fill, harmonic fill, MCGSM-MH, RIDE-MH, the truth.
const ROWS_PER_CASE: usize = 5;

/// One line of `convergence.csv`: a chain's state after the initialisation (sweep 0) and
/// after each sweep.
#[derive(Clone, Debug, Serialize)]
struct ConvergenceRow {
    case: String,
    method: String,
    sweep: usize,
    /// log-likelihood rate of the hole under the chain's model (bit/px)
    hole_bits_per_px: f64,
    /// accepted / proposed moves in this sweep (none for sweep 0)
    acceptance: Option<f64>,
}

pub fn run_inpainting(name: &str, opts: &Options) -> Result<()> {
    let t_all = Instant::now();
    let file = opts.experiments.join(format!("{name}.toml"));
    let cfg = load(&file, &opts.scale)?;
    // the config and every model file it uses: a rerun with both unchanged reuses the results
    let mut key = toml::to_string(&cfg)?;
    // the sampler's arithmetic: results of another version are not reused
    key.push_str(&format!("raster {}", crate::model::raster::RASTER_VERSION));
    for case in &cfg.cases {
        for row in [&case.ride, &case.mcgsm] {
            let p = opts
                .out
                .join(&case.table)
                .join(row)
                .join("model.safetensors");
            key.push_str(
                &std::fs::read(&p)
                    .map(|b| crate::train::fnv1a_hex(&b))
                    .unwrap_or_default(),
            );
        }
    }
    let hash = fnv(&key);
    let out = opts.out.join(name);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Ok(mut r) = csv::Reader::from_path(out.join("inpainting.csv")) {
        let old: Vec<FillRow> = r.deserialize().filter_map(|x| x.ok()).collect();
        let complete = old.len() == cfg.cases.len() * ROWS_PER_CASE
            && old
                .iter()
                .all(|f| f.config_hash == hash && f.scale == opts.scale);
        if complete && out.join("inpainting.png").is_file() {
            eprintln!("[{name}] finished earlier with the same config and models, reused");
            return Ok(());
        }
    }
    let mut rows: Vec<FillRow> = vec![];
    let mut convergence: Vec<ConvergenceRow> = vec![];
    let mut figure: Vec<Vec<Panel>> = vec![];
    for case in &cfg.cases {
        let tcfg = TableConfig::load(&opts.experiments.join(format!("{}.toml", case.table)))?;
        let table_out = opts.out.join(&case.table);
        let t = tcfg.resolve(&opts.scale, &opts.experiments, &table_out)?;
        let model_of = |row: &str| -> Result<crate::model::ride::Ride<f32>> {
            let p = table_out.join(row).join("model.safetensors");
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
            ..Default::default()
        };
        let geo = Geometry::new(&ride, h, w, io.hole, None, cfg.context)
            .with_context(|| format!("inpainting case '{}' ({})", case.id, img.name))?;
        let lo = super::run_table::percentile(&img.data, 0.1);
        let hi = super::run_table::percentile(&img.data, 99.9);
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
        for (label, m) in [("MCGSM fill", &mcgsm), ("RIDE fill", &ride)] {
            eprintln!("[{name}] {}: {label} ({} sweeps)", case.id, cfg.sweeps);
            let t0 = Instant::now();
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
            fills.push((label.into(), r.image, acc, t0.elapsed().as_secs_f64()));
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
            seconds: 0.0,
            hole: cfg.hole,
            seed: cfg.seed,
            scale: opts.scale.clone(),
            git_commit: crate::io::provenance::git_commit(),
            config_hash: hash.clone(),
        });
        figure.push(panels);
        let mut wtr = csv::Writer::from_writer(vec![]);
        for r in &rows {
            wtr.serialize(r)?;
        }
        write_atomic(
            &out.join("inpainting.csv"),
            &wtr.into_inner().context("writing CSV")?,
        )?;
        let mut wtr = csv::Writer::from_writer(vec![]);
        for r in &convergence {
            wtr.serialize(r)?;
        }
        write_atomic(
            &out.join("convergence.csv"),
            &wtr.into_inner().context("writing CSV")?,
        )?;
    }
    image_grid(
        &format!(
            "{}: {}×{} hole, {} MH sweeps ({} scale)",
            cfg.title, cfg.hole, cfg.hole, cfg.sweeps, opts.scale
        ),
        &figure,
        &out.join("inpainting"),
    )?;
    provenance(
        name,
        &opts.scale,
        &file,
        vec![cfg.seed],
        t_all.elapsed().as_secs_f64(),
        &out,
    )
}
