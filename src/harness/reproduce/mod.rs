//! `ride reproduce`: every experiment of the paper from committed configs — tables
//! (`experiments/<table>.toml`), ablation sweeps (`experiments/sweep_*.toml`), texture synthesis
//! and inpainting — at one scale (`quick`, `standard` or `paper`), into CSV tables, figures and
//! `REPORT.md`. The list of experiments is `experiments/reproduce.toml`.
//!
//! Every finished piece is kept (tables reuse rows whose config is unchanged, sweeps skip
//! finished cells), so a killed run restarted with the same command only redoes what was lost.

pub mod compute;
mod cross_draw;
mod inpainting_report;
pub mod report;
pub mod run_inpainting;
pub mod run_sweeps;
pub mod run_table;
pub mod slurm;
mod status;
mod suite_progress;
pub mod table;
pub mod tiles_file;

use crate::io::run_lock::{Claim, RunLock};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One line of a table CSV (`results/<experiment>/table.csv`); sweeps and textures use it too.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableRow {
    pub experiment: String,
    pub row: String,
    pub label: String,
    pub model: String,
    /// log-likelihood rate on the test images, bit/px (higher is better)
    pub bits_per_px: f64,
    /// standard error of that mean over test tiles
    pub sem: f64,
    pub tiles: usize,
    pub pixels: usize,
    pub parameters: usize,
    pub train_seconds: Option<f64>,
    pub eval_seconds: f64,
    pub scale: String,
    pub seed: u64,
    /// commit of the code that produced the row
    pub git_commit: String,
    pub config_hash: String,
    pub note: String,
    /// ensemble rows: the single model's score on the same pixels (what the ensemble is
    /// compared with)
    #[serde(default)]
    pub single_bits_per_px: Option<f64>,
    #[serde(default)]
    pub single_sem: Option<f64>,
    /// `train::NUMERICS_VERSION` of the code that produced the row (1 before it was recorded)
    #[serde(default = "numerics_v1")]
    pub numerics_version: u32,
}

fn numerics_v1() -> u32 {
    1
}

/// `experiments/reproduce.toml`: what `ride reproduce` runs, in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub tables: Vec<String>,
    #[serde(default)]
    pub sweeps: Vec<String>,
    #[serde(default)]
    pub inpainting: Vec<String>,
}

/// Options of [`run`].
#[derive(Clone, Debug)]
pub struct Options {
    pub experiments: PathBuf,
    pub data_dir: PathBuf,
    /// results root (`results` for the paper scale, `results/<scale>` for the reduced ones)
    pub out: PathBuf,
    pub scale: String,
    /// run only these experiments (table, sweep or inpainting names); empty: all
    pub only: Vec<String>,
    pub workers: usize,
}

pub const SCALES: [&str; 3] = ["quick", "standard", "paper"];

/// Default results root of a scale: the paper scale's report is the project's report
/// (`results/REPORT.md`); the reduced scales live in `results/standard` and `results/quick`.
pub fn default_out(scale: &str) -> PathBuf {
    if scale == "paper" {
        PathBuf::from("results")
    } else {
        PathBuf::from("results").join(scale)
    }
}

/// FNV-1a of a string, hex (config hashes).
pub fn fnv(s: &str) -> String {
    crate::train::fnv1a_hex(s.as_bytes())
}

/// UTC date and time `YYYY-MM-DD HH:MM:SS` from the system clock.
pub fn utc_now() -> String {
    crate::io::provenance::utc_of(std::time::SystemTime::now())
}

/// Provenance of one experiment's outputs (`provenance.json` beside its CSV).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Provenance {
    pub experiment: String,
    pub scale: String,
    pub config_file: String,
    /// FNV-1a of the config file's text
    pub config_hash: String,
    pub seeds: Vec<u64>,
    pub git_commit: String,
    pub machine: String,
    pub threads: usize,
    pub date_utc: String,
    pub seconds: f64,
}

pub(crate) fn provenance(
    name: &str,
    scale: &str,
    file: &Path,
    seeds: Vec<u64>,
    seconds: f64,
    out: &Path,
) -> Result<()> {
    let text = std::fs::read_to_string(file)?;
    let mut seeds = seeds;
    seeds.sort();
    seeds.dedup();
    let p = Provenance {
        experiment: name.into(),
        scale: scale.into(),
        config_file: format!(
            "experiments/{}",
            file.file_name().and_then(|n| n.to_str()).unwrap_or(name)
        ),
        config_hash: fnv(&text),
        seeds,
        git_commit: crate::io::provenance::git_commit(),
        machine: crate::io::provenance::cpu_model(),
        threads: rayon::current_num_threads(),
        date_utc: utc_now(),
        seconds,
    };
    crate::io::files::write_atomic(
        &out.join("provenance.json"),
        serde_json::to_string_pretty(&p)?.as_bytes(),
    )
}

fn load_suite(opts: &Options) -> Result<Suite> {
    let suite_path = opts.experiments.join("reproduce.toml");
    let text = std::fs::read_to_string(&suite_path)
        .with_context(|| format!("cannot read {}", suite_path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", suite_path.display()))
}

/// The first files a table needs that are not there: its rows' data and model files.
fn table_missing_data(t: &table::Table, data_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut missing = crate::train::dataset::missing_data(&t.base, data_dir);
    for r in &t.rows {
        match &r.kind {
            table::RowKind::Train(cfg) => {
                missing.extend(crate::train::dataset::missing_data(cfg, data_dir))
            }
            table::RowKind::ModelFile { path, .. } if !path.exists() => missing.push(path.clone()),
            _ => {}
        }
    }
    missing
}

/// Rewrites `REPORT.md` from the results already under `opts.out`.
/// Each sweep's table and the ablation figures are first rebuilt from the finished cells, so a
/// sweep still running shows what it has.
pub fn report_only(opts: &Options) -> Result<()> {
    let suite = load_suite(opts)?;
    run_sweeps::refresh_tables_and_figures(&suite.sweeps, opts)?;
    report::write_report(&opts.experiments, &opts.out, &suite, &opts.scale)
}

/// The suite with every config read and checked (tables resolved at the scale, sweep cells
/// built, inpainting cases validated): a mistake in the last experiment must not surface after
/// hours of the first. `--only` names must be experiments of the suite.
pub(crate) struct Resolved {
    pub suite: Suite,
    pub tables: Vec<table::Table>,
    pub sweep_cells: Vec<Vec<crate::harness::sweep::Cell>>,
}

pub(crate) fn resolve(opts: &Options) -> Result<Resolved> {
    if !SCALES.contains(&opts.scale.as_str()) {
        bail!(
            "unknown scale '{}' (one of: {})",
            opts.scale,
            SCALES.join(", ")
        );
    }
    let suite_path = opts.experiments.join("reproduce.toml");
    let suite = load_suite(opts)?;
    let all: Vec<&String> = suite
        .tables
        .iter()
        .chain(&suite.sweeps)
        .chain(&suite.inpainting)
        .collect();
    for o in &opts.only {
        if !all.contains(&o) {
            bail!(
                "--only {o}: not an experiment of {} ({})",
                suite_path.display(),
                all.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut resolved = vec![];
    for name in &suite.tables {
        let file = opts.experiments.join(format!("{name}.toml"));
        let cfg = table::TableConfig::load(&file)?;
        if cfg.name != *name {
            bail!("{}: name = '{}' must be '{name}'", file.display(), cfg.name);
        }
        resolved.push(cfg.resolve(&opts.scale, &opts.experiments, &opts.out.join(name))?);
    }
    let mut sweep_cells = vec![];
    for name in &suite.sweeps {
        let (_, cells) = crate::harness::sweep::SweepConfig::load_at_scale(
            &opts.experiments,
            name,
            &opts.scale,
        )?;
        sweep_cells.push(cells);
    }
    for name in &suite.inpainting {
        let file = opts.experiments.join(format!("{name}.toml"));
        let cfg = run_inpainting::load(&file, &opts.scale)?;
        run_inpainting::validate_cases(&cfg, &resolved)
            .with_context(|| format!("{}: invalid inpainting config", file.display()))?;
    }
    Ok(Resolved {
        suite,
        tables: resolved,
        sweep_cells,
    })
}

/// One unit of work of `ride reproduce`, run alone (a Slurm job of `--emit-slurm`).
#[derive(Clone, Debug)]
pub enum Unit {
    /// a row of the one table named by `--only`
    Row(String),
    /// a cell (index) of the one sweep named by `--only`
    Cell(usize),
}

/// Runs one row or sweep cell of the single experiment `opts.only` names; what it depends on
/// (an earlier row, the cell it grows from) must have finished. No table, figure or report.
pub fn run_unit(opts: &Options, unit: &Unit) -> Result<()> {
    let [name] = opts.only.as_slice() else {
        bail!("--row/--cell need exactly one --only naming its table or sweep");
    };
    let r = resolve(opts)?;
    let out = opts.out.join(name);
    match unit {
        Unit::Row(id) => {
            let t = r
                .suite
                .tables
                .iter()
                .position(|n| n == name)
                .map(|i| &r.tables[i])
                .with_context(|| format!("--row {id}: '{name}' is not a table"))?;
            run_table::run_table_row(t, id, &opts.data_dir, &out)?;
        }
        Unit::Cell(k) => {
            let cells = r
                .suite
                .sweeps
                .iter()
                .position(|n| n == name)
                .map(|i| &r.sweep_cells[i])
                .with_context(|| format!("--cell {k}: '{name}' is not a sweep"))?;
            let cell = cells
                .get(*k)
                .with_context(|| format!("--cell {k}: sweep '{name}' has {} cells", cells.len()))?;
            crate::harness::sweep::run_cell_alone(cells, cell, &opts.data_dir, &out)?;
        }
    }
    Ok(())
}

/// Claims the experiment `name` (its results folder `dir`) for this process. When another
/// process holds it: says so, counts its `units` as passed and adds it to `busy` (`None`).
fn claim_experiment(
    dir: &Path,
    name: &str,
    units: usize,
    progress: &mut suite_progress::SuiteProgress,
    busy: &mut Vec<String>,
) -> Result<Option<RunLock>> {
    Ok(match RunLock::try_acquire(dir)? {
        Claim::Held(lock) => Some(lock),
        Claim::Busy(who) => {
            eprintln!("[{name}] skipped here: {who} is running it");
            progress.next(units, &format!("{name} left to {who}"));
            busy.push(name.to_string());
            None
        }
    })
}

/// Runs the suite at `opts.scale` and writes the report.
pub fn run(opts: &Options) -> Result<()> {
    crate::limits::check("--workers", opts.workers, 1, crate::limits::MAX_WORKERS)?;
    let Resolved {
        suite,
        tables: resolved,
        sweep_cells,
    } = resolve(opts)?;
    let wanted = |n: &String| opts.only.is_empty() || opts.only.contains(n);
    let t_all = Instant::now();
    let units = suite
        .tables
        .iter()
        .zip(&resolved)
        .filter(|(n, _)| wanted(n))
        .map(|(_, t)| t.rows.len())
        .chain(
            suite
                .sweeps
                .iter()
                .zip(&sweep_cells)
                .filter(|(n, _)| wanted(n))
                .map(|(_, c)| c.len()),
        )
        .sum::<usize>()
        + suite.inpainting.iter().filter(|n| wanted(n)).count();
    let mut progress = suite_progress::SuiteProgress::new(units);
    // experiments whose data is not in the data directory are skipped (named at the end)
    let mut skipped: Vec<(String, std::path::PathBuf)> = vec![];
    // tables and inpainting experiments another process is running (it holds their lock)
    let mut busy: Vec<String> = vec![];
    for (name, t) in suite
        .tables
        .iter()
        .zip(&resolved)
        .filter(|(n, _)| wanted(n))
    {
        let t0 = Instant::now();
        let file = opts.experiments.join(format!("{name}.toml"));
        let out = opts.out.join(name);
        if let Some(p) = table_missing_data(t, &opts.data_dir).into_iter().next() {
            eprintln!("[{name}] skipped: {} is not there", p.display());
            progress.next(t.rows.len(), &format!("table {name} skipped"));
            skipped.push((name.clone(), p));
            continue;
        }
        let Some(_claim) = claim_experiment(&out, name, t.rows.len(), &mut progress, &mut busy)?
        else {
            continue;
        };
        let rows = run_table::run_table(t, &opts.data_dir, &out, &mut progress)?;
        let seeds = rows.iter().map(|r| r.seed).collect();
        provenance(
            name,
            &opts.scale,
            &file,
            seeds,
            t0.elapsed().as_secs_f64(),
            &out,
        )?;
    }
    let mut sweeps: Vec<String> = vec![];
    for (name, cells) in suite
        .sweeps
        .iter()
        .zip(&sweep_cells)
        .filter(|(n, _)| wanted(n))
    {
        let missing = cells.iter().find_map(|c| {
            crate::train::dataset::missing_data(&c.config, &opts.data_dir)
                .into_iter()
                .next()
        });
        match missing {
            Some(p) => {
                eprintln!("[{name}] skipped: {} is not there", p.display());
                progress.next(cells.len(), &format!("sweep {name} skipped"));
                skipped.push((name.clone(), p));
            }
            None => sweeps.push(name.clone()),
        }
    }
    if !sweeps.is_empty() {
        run_sweeps::run_sweeps(&sweeps, &suite.sweeps, opts, &mut progress)?;
    }
    for name in suite.inpainting.iter().filter(|n| wanted(n)) {
        // inpainting needs the tables' models and their test images
        let cfg =
            run_inpainting::load(&opts.experiments.join(format!("{name}.toml")), &opts.scale)?;
        let gap = cfg.cases.iter().find_map(|c| {
            skipped
                .iter()
                .find(|(n, _)| *n == c.table)
                .map(|(_, p)| p.clone())
        });
        if let Some(p) = gap {
            eprintln!("[{name}] skipped: {} is not there", p.display());
            progress.next(1, &format!("inpainting {name} skipped"));
            skipped.push((name.clone(), p));
            continue;
        }
        let Some(_claim) =
            claim_experiment(&opts.out.join(name), name, 1, &mut progress, &mut busy)?
        else {
            continue;
        };
        progress.next(1, &format!("inpainting {name}"));
        run_inpainting::run_inpainting(name, opts)?;
    }
    report::write_report(&opts.experiments, &opts.out, &suite, &opts.scale)?;
    if !skipped.is_empty() {
        eprintln!(
            "skipped because a file they read is missing (each named above): {}. Data sets missing from {}: `make data` links or downloads them (BSDS300, van Hateren, Brodatz; see README), then rerun.",
            skipped
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            opts.data_dir.display()
        );
    }
    if !busy.is_empty() {
        eprintln!(
            "left to the other processes running them: {}. Run this again once they finish: it reuses what they finished.",
            busy.join(", ")
        );
    }
    eprintln!(
        "reproduce ({} scale) finished in {:.0} s; report: {}",
        opts.scale,
        t_all.elapsed().as_secs_f64(),
        opts.out.join("REPORT.md").display()
    );
    Ok(())
}
