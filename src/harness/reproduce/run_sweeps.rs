//! The ablation sweeps of `ride reproduce`: each sweep's grid at the chosen scale, its
//! `table.csv` (the common schema), and one figure per `plot.figure` (bits/px against the
//! swept value, error bars = SEM over test tiles, one series per sweep).

use super::run_table::write_csv;
use super::{provenance, Options, TableRow};
use crate::harness::sweep::{self, Cell, SweepConfig, SweepPlot};
use crate::io::plot::{line_plot, LinePlot, Series};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// Runs the sweeps `names` (finished cells reused), writes each one's `table.csv` and
/// provenance, then every ablation figure of the suite's sweeps `all`.
pub fn run_sweeps(
    names: &[String],
    all: &[String],
    opts: &Options,
    progress: &mut super::suite_progress::SuiteProgress,
) -> Result<()> {
    for name in names {
        let t0 = Instant::now();
        let file = opts.experiments.join(format!("{name}.toml"));
        let (_, cells) = SweepConfig::load_at_scale(&opts.experiments, name, &opts.scale)?;
        let out = opts.out.join(name);
        progress.next(cells.len(), &format!("sweep {name}, {} cells", cells.len()));
        let rows = sweep::run(&cells, &opts.data_dir, &out, opts.workers)?;
        write_table(name, &cells, &rows, opts)?;
        provenance(
            name,
            &opts.scale,
            &file,
            rows.iter().map(|r| r.seed).collect(),
            t0.elapsed().as_secs_f64(),
            &out,
        )?;
    }
    write_figures(all, opts)
}

/// Rewrites each sweep's `table.csv` from its finished cells (a sweep still running included)
/// and every ablation figure: what `--report-only` shows without training anything.
pub fn refresh_tables_and_figures(sweeps: &[String], opts: &Options) -> Result<()> {
    for name in sweeps {
        let (_, cells) = SweepConfig::load_at_scale(&opts.experiments, name, &opts.scale)?;
        let rows = sweep::finished_rows(&cells, &opts.out.join(name))?;
        if !rows.is_empty() {
            write_table(name, &cells, &rows, opts)?;
        }
    }
    write_figures(sweeps, opts)
}

/// The sweep's rows in the tables' common schema, as `<out>/<name>/table.csv`.
fn write_table(name: &str, cells: &[Cell], rows: &[sweep::Row], opts: &Options) -> Result<()> {
    let table: Vec<TableRow> = rows
        .iter()
        .map(|r| TableRow {
            experiment: name.to_string(),
            row: format!("{:04}", r.index),
            label: r.cell.clone(),
            model: r.model.clone(),
            bits_per_px: r.bits_per_px,
            sem: r.sem,
            tiles: r.tiles,
            pixels: 0,
            parameters: r.parameters,
            train_seconds: Some(r.train_seconds),
            eval_seconds: r.eval_seconds,
            scale: opts.scale.clone(),
            seed: r.seed,
            git_commit: r.git_commit.clone(),
            config_hash: cells
                .get(r.index)
                .map(|c| crate::train::config_hash(&c.config))
                .unwrap_or_default(),
            note: String::new(),
            single_bits_per_px: None,
            single_sem: None,
            numerics_version: r.numerics_version,
        })
        .collect();
    write_csv(&opts.out.join(name).join("table.csv"), &table)
}

/// Every figure named by a `plot` of the sweeps, from all their finished cells — the sweeps
/// not run by this command and those still running included, so that `--only` one sweep
/// keeps the other series of a shared figure. A figure with no finished point is not written.
fn write_figures(sweeps: &[String], opts: &Options) -> Result<()> {
    // figure stem → the figure assembled from every sweep that plots into it
    let mut figures: BTreeMap<String, Figure> = BTreeMap::new();
    for name in sweeps {
        let (s, cells) = SweepConfig::load_at_scale(&opts.experiments, name, &opts.scale)?;
        let rows = sweep::finished_rows(&cells, &opts.out.join(name))?;
        for p in s.plot.iter().chain(&s.plots) {
            let e = figures.entry(p.figure.clone()).or_insert_with(|| Figure {
                x_label: p.x_label.clone(),
                log_x: p.log_x,
                series: vec![],
                most_seeds: 1,
                seed_points: vec![],
            });
            let (series, seeds, points) = plot_series(p, &cells, &rows);
            e.series.extend(series);
            e.most_seeds = e.most_seeds.max(seeds);
            e.seed_points.extend(points);
        }
    }
    for (stem, f) in figures {
        let Figure {
            x_label,
            log_x,
            series,
            most_seeds: seeds,
            seed_points,
        } = f;
        if series.iter().all(|s| s.x.is_empty()) {
            continue;
        }
        let dir = opts.out.join("ablations");
        write_points(&dir.join(format!("{stem}.csv")), &series)?;
        write_seed_points(&dir.join(format!("{stem}_seeds.csv")), &seed_points)?;
        line_plot(
            &LinePlot {
                title: format!(
                    "Ablation: log-likelihood rate vs {x_label} ({} scale)",
                    opts.scale
                ),
                x_label,
                y_label: if seeds > 1 {
                    "test log-likelihood rate [bit/px], mean ± SEM over seeds".into()
                } else {
                    "test log-likelihood rate [bit/px] ± SEM".into()
                },
                series,
                log_x,
                points: true,
            },
            &dir.join(&stem),
        )?;
    }
    Ok(())
}

/// The series of one sweep plot: one per `series_by` value, one point per x. A point with
/// several seeds is their mean ± SEM over seeds, with each seed's value as a member point;
/// with one seed it is that cell's rate ± SEM over its test tiles. Also returns the most seeds
/// behind any point, and every seed's value (series, x, seed, rate) for paired comparisons.
fn plot_series(
    p: &SweepPlot,
    cells: &[Cell],
    rows: &[sweep::Row],
) -> (Vec<Series>, usize, Vec<SeedPoint>) {
    // series label → x (as bits) → (x, rates, tile SEMs)
    type Points = BTreeMap<u64, (f64, Vec<f64>, Vec<f64>)>;
    let mut groups: BTreeMap<String, Points> = BTreeMap::new();
    let mut seeds: Vec<SeedPoint> = vec![];
    for r in rows {
        let Some(c) = cells.get(r.index) else {
            continue;
        };
        if !p.shows(&c.overrides) {
            continue;
        }
        let Some(x) = p.x_value(&c.overrides) else {
            continue;
        };
        let e = groups
            .entry(p.series_label(&c.overrides))
            .or_default()
            .entry(x.to_bits())
            .or_insert((x, vec![], vec![]));
        e.1.push(r.bits_per_px);
        e.2.push(r.sem);
        seeds.push((p.series_label(&c.overrides), x, r.seed, r.bits_per_px));
    }
    let mut most = 1;
    let series = groups
        .into_iter()
        .map(|(label, points)| {
            let mut pts: Vec<_> = points.into_values().collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut s = Series {
                label,
                ..Default::default()
            };
            let mut err = vec![];
            for (x, ys, sems) in pts {
                most = most.max(ys.len());
                let (mean, sem) = if ys.len() > 1 {
                    s.members.extend(ys.iter().map(|&y| (x, y)));
                    crate::tasks::eval::mean_sem(&ys)
                } else {
                    (ys[0], sems[0])
                };
                s.x.push(x);
                s.y.push(mean);
                err.push(sem);
            }
            s.err = Some(err);
            s
        })
        .collect();
    (series, most, seeds)
}

/// An ablation figure assembled from the sweeps that plot into it.
struct Figure {
    x_label: String,
    log_x: bool,
    series: Vec<Series>,
    /// the most seeds behind any point (the y label says "mean ± SEM over seeds" when > 1)
    most_seeds: usize,
    seed_points: Vec<SeedPoint>,
}

/// One seed's rate at one point of a figure: (series, x, seed, bits/px).
type SeedPoint = (String, f64, u64, f64);

/// Every seed's rate behind a figure's points, as CSV (series, x, seed, bits_per_px): the
/// report pairs two series by seed over the seeds both have.
fn write_seed_points(path: &std::path::Path, points: &[SeedPoint]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(["series", "x", "seed", "bits_per_px"])?;
    for (label, x, seed, bits) in points {
        w.write_record([
            label.clone(),
            x.to_string(),
            seed.to_string(),
            bits.to_string(),
        ])?;
    }
    crate::io::files::write_atomic(path, &w.into_inner().context("writing CSV")?)
}

/// The plotted points of a figure as CSV: series, x, rate, its SEM, seeds.
fn write_points(path: &std::path::Path, series: &[Series]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(["series", "x", "bits_per_px", "sem", "seeds"])?;
    for s in series {
        for (i, (x, y)) in s.x.iter().zip(&s.y).enumerate() {
            let e = s
                .err
                .as_ref()
                .and_then(|e| e.get(i))
                .copied()
                .unwrap_or(f64::NAN);
            let n = s.members.iter().filter(|m| m.0 == *x).count().max(1);
            w.write_record([
                s.label.clone(),
                x.to_string(),
                y.to_string(),
                e.to_string(),
                n.to_string(),
            ])?;
        }
    }
    crate::io::files::write_atomic(path, &w.into_inner().context("writing CSV")?)
}
