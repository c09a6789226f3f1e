//! The inpainting experiment of `ride reproduce` (docs/MODEL.md §7): for test images of a
//! table's data set, a square hole filled four ways — the mean of a ring of observed pixels, a
//! harmonic fill, MH inpainting with the table's MCGSM and with its RIDE — each scored by the
//! RIDE model (log-likelihood of the filled hole), PSNR and SSIM against the true pixels; the
//! chains' convergence; a CSV and a figure (original / masked / fills). Cases run in parallel
//! and each finished case is kept (`config.rs`: the config; `case.rs`: one case).

mod case;
mod config;

pub use config::{load, validate_cases, Case, InpaintingConfig};

use super::run_table::write_csv;
use super::{fnv, provenance, Options};
use crate::io::files::write_atomic;
use crate::io::plot::{image_grid, line_plot, LinePlot, Panel, Series};
use anyhow::{Context, Result};
#[cfg(test)]
pub(crate) use case::chain_state_path;
use case::{run_case, CaseResult};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

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
    /// (∞ for the true pixels: written as text so JSON keeps it)
    #[serde(with = "float_or_text")]
    pub psnr_db: f64,
    /// SSIM over the hole vs the true pixels (11×11 Gaussian window, the same dynamic range)
    pub ssim: f64,
    pub acceptance: Option<f64>,
    pub sweeps: usize,
    /// the MH target of a chain ("crop" or "window"), empty for the baselines
    pub target: String,
    pub seconds: f64,
    pub hole: usize,
    pub seed: u64,
    pub scale: String,
    pub git_commit: String,
    pub config_hash: String,
}

/// Rows of `inpainting.csv` per case: mean fill, harmonic fill, MCGSM-MH, RIDE-MH, the truth.
const ROWS_PER_CASE: usize = 5;

/// One line of `convergence.csv`: a chain's state after the initialisation (sweep 0) and
/// after each sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ConvergenceRow {
    case: String,
    method: String,
    sweep: usize,
    /// log-likelihood rate of the hole under the chain's model (bit/px)
    hole_bits_per_px: f64,
    /// accepted / proposed moves in this sweep (none for sweep 0)
    acceptance: Option<f64>,
}

/// The cache key of one case: the run's settings, this case, the per-cell arithmetic's version
/// and the case's two model files — so a case is reused until one of them changes, whatever
/// happens to the other cases (a table trained later, a case added).
fn case_hash(cfg: &InpaintingConfig, case: &Case, opts: &Options) -> Result<String> {
    let mut one = cfg.clone();
    one.cases = vec![case.clone()];
    let mut key = toml::to_string(&one)?;
    key.push_str(&format!("raster {}", crate::model::raster::RASTER_VERSION));
    for row in [&case.ride, &case.mcgsm] {
        key.push_str(
            &std::fs::read(model_path(case, row, opts))
                .map(|b| crate::train::fnv1a_hex(&b))
                .unwrap_or_default(),
        );
    }
    Ok(fnv(&key))
}

/// The model file of row `row` of the case's table.
pub(super) fn model_path(case: &Case, row: &str, opts: &Options) -> std::path::PathBuf {
    opts.out
        .join(&case.table)
        .join(row)
        .join("model.safetensors")
}

/// True if both models of the case's table are there.
fn models_exist(case: &Case, opts: &Options) -> bool {
    [&case.ride, &case.mcgsm]
        .iter()
        .all(|row| model_path(case, row, opts).is_file())
}

/// How far a case has come, from its files under the experiment's folder `dir`.
pub enum CaseProgress {
    /// `cases/<id>.json` is there
    Kept,
    /// a chain of it saved its state (a run was killed or is running)
    ChainSaved,
    NotStarted,
}

pub fn case_progress(dir: &Path, case: &str) -> CaseProgress {
    if dir.join("cases").join(format!("{case}.json")).is_file() {
        CaseProgress::Kept
    } else if case::CHAIN_LABELS
        .iter()
        .any(|l| case::chain_state_path(dir, case, l).is_file())
    {
        CaseProgress::ChainSaved
    } else {
        CaseProgress::NotStarted
    }
}

pub fn run_inpainting(name: &str, opts: &Options) -> Result<()> {
    let t_all = Instant::now();
    let file = opts.experiments.join(format!("{name}.toml"));
    let cfg = load(&file, &opts.scale)?;
    let hashes = cfg
        .cases
        .iter()
        .map(|c| case_hash(&cfg, c, opts))
        .collect::<Result<Vec<String>>>()?;
    let out = opts.out.join(name);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Ok(mut r) = csv::Reader::from_path(out.join("inpainting.csv")) {
        let old: Vec<FillRow> = r.deserialize().filter_map(|x| x.ok()).collect();
        let per_case = ROWS_PER_CASE + case::CHAIN_LABELS.len() * case::early_sweeps(&cfg).len();
        let complete = old.len() == cfg.cases.len() * per_case
            && old.iter().all(|f| {
                f.scale == opts.scale
                    && cfg
                        .cases
                        .iter()
                        .zip(&hashes)
                        .any(|(c, h)| c.id == f.case && *h == f.config_hash)
            });
        if complete && out.join("inpainting.png").is_file() {
            eprintln!("[{name}] finished earlier with the same config and models, reused");
            return Ok(());
        }
    }
    let mut rows: Vec<FillRow> = vec![];
    let mut convergence: Vec<ConvergenceRow> = vec![];
    let mut figure: Vec<Vec<Panel>> = vec![];
    // cases in parallel (each chain splits its own work in two as well); a finished case is
    // kept in cases/<id>.json, so a killed run redoes only the unfinished ones; cases whose
    // table is not trained yet wait (the others run)
    let results: Vec<Option<CaseResult>> = cfg
        .cases
        .par_iter()
        .zip(&hashes)
        .map(|(case, hash)| -> Result<Option<CaseResult>> {
            let path = out.join("cases").join(format!("{}.json", case.id));
            if let Some(r) = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<CaseResult>(&b).ok())
                .filter(|r| r.config_hash == *hash)
            {
                eprintln!("[{name}] {}: finished earlier, reused", case.id);
                return Ok(Some(r));
            }
            if !models_exist(case, opts) {
                eprintln!(
                    "[{name}] {}: waits for the table '{}' (its models are not there yet)",
                    case.id, case.table
                );
                return Ok(None);
            }
            let r = run_case(name, &cfg, case, opts, hash, &out)?;
            write_atomic(&path, &serde_json::to_vec(&r)?)?;
            // the case is kept: its chains' saved states are no longer needed
            for label in case::CHAIN_LABELS {
                let _ = std::fs::remove_file(case::chain_state_path(&out, &case.id, label));
            }
            Ok(Some(r))
        })
        .collect::<Result<_>>()?;
    let waiting: Vec<String> = cfg
        .cases
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(c, _)| format!("{} (table '{}')", c.id, c.table))
        .collect();
    if !waiting.is_empty() {
        anyhow::bail!(
            "inpainting: {} of {} cases are finished and kept in {}; these need their table's models first (ride reproduce --only TABLE): {}",
            cfg.cases.len() - waiting.len(),
            cfg.cases.len(),
            out.join("cases").display(),
            waiting.join(", ")
        );
    }
    let results: Vec<CaseResult> = results.into_iter().flatten().collect();
    // each chain's fill after the config's early sweep counts, kept apart from the case
    let early: Vec<(Vec<FillRow>, Vec<Panel>)> = cfg
        .cases
        .par_iter()
        .zip(&hashes)
        .zip(&results)
        .map(|((case, hash), kept)| early_rows_kept(name, &cfg, case, opts, hash, kept, &out))
        .collect::<Result<_>>()?;
    for (r, (early_rows, early_panels)) in results.iter().zip(early) {
        rows.extend(r.rows.iter().cloned());
        rows.extend(early_rows);
        convergence.extend(r.convergence.iter().cloned());
        // RIDE's fill after the early sweeps just before its final fill
        let mut line = r.panels.clone();
        let at = line.len().saturating_sub(1);
        if !early_panels.is_empty() {
            if let Some(last) = line.last_mut() {
                last.title = format!("{}, {} sweeps", last.title, cfg.sweeps);
            }
        }
        line.splice(at..at, early_panels);
        figure.push(line);
    }
    write_csv(&out.join("inpainting.csv"), &rows)?;
    write_csv(&out.join("convergence.csv"), &convergence)?;
    if cfg.sweeps > 0 {
        for case in &cfg.cases {
            acceptance_plot(&case.id, &convergence, &out)?;
        }
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

/// The early-sweep rows of a finished case ([`case::early_rows`]), kept in
/// `cases/<id>.early.json` and reused while the case and the sweep counts are the same.
fn early_rows_kept(
    name: &str,
    cfg: &InpaintingConfig,
    case: &Case,
    opts: &Options,
    hash: &str,
    kept: &CaseResult,
    out: &Path,
) -> Result<(Vec<FillRow>, Vec<Panel>)> {
    #[derive(Serialize, Deserialize)]
    struct Early {
        config_hash: String,
        sweeps: Vec<usize>,
        rows: Vec<FillRow>,
        panels: Vec<Panel>,
    }
    let ks = case::early_sweeps(cfg);
    if ks.is_empty() {
        return Ok((vec![], vec![]));
    }
    let path = out.join("cases").join(format!("{}.early.json", case.id));
    if let Some(e) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Early>(&b).ok())
        .filter(|e| e.config_hash == hash && e.sweeps == ks)
    {
        return Ok((e.rows, e.panels));
    }
    eprintln!(
        "[{name}] {}: both chains replayed for {ks:?} sweeps (what the later sweeps changed)",
        case.id
    );
    let (rows, panels) = case::early_rows(cfg, case, opts, hash, kept)?;
    let e = Early {
        config_hash: hash.into(),
        sweeps: ks,
        rows,
        panels,
    };
    write_atomic(&path, &serde_json::to_vec(&e)?)?;
    Ok((e.rows, e.panels))
}

/// Each chain's MH acceptance per sweep of one case (`acceptance_<id>.{png,svg}`), from the
/// kept convergence rows, so cases finished by earlier runs get theirs too.
fn acceptance_plot(id: &str, convergence: &[ConvergenceRow], out: &std::path::Path) -> Result<()> {
    let mut series: Vec<Series> = vec![];
    for r in convergence.iter().filter(|r| r.case == id) {
        let Some(a) = r.acceptance else { continue };
        if series.last().is_none_or(|s| s.label != r.method) {
            series.push(Series {
                label: r.method.clone(),
                ..Default::default()
            });
        }
        if let Some(s) = series.last_mut() {
            s.x.push(r.sweep as f64);
            s.y.push(a);
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let sweeps = series.iter().map(|s| s.x.len()).max().unwrap_or(0);
    line_plot(
        &LinePlot {
            title: format!("{id}: Metropolis–Hastings acceptance per sweep"),
            x_label: "sweep".into(),
            y_label: "accepted / proposed moves".into(),
            series,
            log_x: false,
            points: sweeps <= 20,
        },
        &out.join(format!("acceptance_{id}")),
    )
}

/// An f64 that may be infinite: finite values as numbers, others as text ("inf"), so that JSON
/// (which has no infinities) keeps them; reads numbers and text.
mod float_or_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&v.to_string())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(v) => Ok(v),
            Either::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The early sweep counts do not change the chains, so they are not part of a case's cache
    /// key: adding them to a config keeps every finished case (hours of chains).
    #[test]
    fn early_sweeps_leave_the_case_key_alone() {
        let opts = Options {
            experiments: "experiments".into(),
            data_dir: "data".into(),
            out: "results".into(),
            scale: "paper".into(),
            only: vec![],
            workers: 1,
        };
        let mut cfg = load(Path::new("experiments/inpainting.toml"), "paper").unwrap();
        assert_eq!(cfg.early_sweeps, [3]);
        let with = case_hash(&cfg, &cfg.cases[0], &opts).unwrap();
        cfg.early_sweeps.clear();
        assert_eq!(case_hash(&cfg, &cfg.cases[0], &opts).unwrap(), with);
        cfg.sweeps += 1;
        assert_ne!(case_hash(&cfg, &cfg.cases[0], &opts).unwrap(), with);
        // counts not below `sweeps` are left out (the final fill is that snapshot)
        cfg.early_sweeps = vec![3, 3, cfg.sweeps, 1];
        assert_eq!(case::early_sweeps(&cfg), [1, 3]);
    }
}
