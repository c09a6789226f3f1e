//! Running a sweep's cells: each finished cell's row file (atomic), the CSV rebuilt from them,
//! grown cells after the cells they start from.

use super::{levels, Cell, Row};
use crate::io::files::write_atomic;
use crate::io::run_lock::{Claim, RunLock};
use crate::train;
use crate::train::config::Experiment;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

fn row_path(out: &Path, index: usize) -> PathBuf {
    out.join("rows").join(format!("{index:04}.json"))
}

/// The folder a cell trains into (model, log, checkpoint, lock).
fn cell_dir(out: &Path, index: usize) -> PathBuf {
    out.join("cells").join(format!("{index:04}"))
}

/// The config a cell trains under: its grid point's, started from the trained model of the
/// cell it grows from (an error while that cell has not finished).
fn cell_config(cell: &Cell, out: &Path) -> Result<Experiment> {
    let mut config = cell.config.clone();
    if let Some(p) = cell.grown_from {
        let from = cell_dir(out, p).join("model.safetensors");
        if !from.is_file() {
            bail!(
                "sweep cell {} ({}) grows from cell {p}, which has not finished ({} is missing): run that cell first",
                cell.index,
                cell.id(),
                from.display()
            );
        }
        config.model.init_from = Some(from);
    }
    Ok(config)
}

/// The cell's row file, when there is one, and whether it is current: trained under the
/// cell's config (with the model it grows from) and this numerics version.
fn stored_row(cell: &Cell, out: &Path, hash: &str) -> Result<Option<(Row, bool)>> {
    let path = row_path(out, cell.index);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let row: Row = serde_json::from_str(&text)
        .with_context(|| format!("{}: corrupt row file", path.display()))?;
    let current = row.config_hash == hash && row.numerics_version == train::NUMERICS_VERSION;
    Ok(Some((row, current)))
}

/// The rows of the cells that have finished under their current config and numerics version,
/// by index (what a report or figure may show while the rest of the sweep still runs).
pub fn finished_rows(cells: &[Cell], out: &Path) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for cell in cells {
        rows.extend(finished_row(cell, out)?);
    }
    Ok(rows)
}

/// The cell's row if it has finished under its current config and numerics version.
fn finished_row(cell: &Cell, out: &Path) -> Result<Option<Row>> {
    // a grown cell whose parent has not finished cannot have finished either
    let Ok(config) = cell_config(cell, out) else {
        return Ok(None);
    };
    let hash = train::config_hash_under(&config, out);
    Ok(match stored_row(cell, out, &hash)? {
        Some((row, true)) => Some(row),
        _ => None,
    })
}

/// The line printed when a cell starts training: which of how many, and the sweep's ETA —
/// the mean machine time (training + evaluation) of the finished cells times the cells left,
/// over the workers (a rough guide: deeper cells take longer).
fn start_line(cells: &[Cell], cell: &Cell, out: &Path, workers: usize) -> Result<String> {
    let done = finished_rows(cells, out)?;
    let left = cells.len() - done.len();
    let eta = if done.is_empty() {
        String::new()
    } else {
        let mean = done
            .iter()
            .map(|r| r.train_seconds + r.eval_seconds)
            .sum::<f64>()
            / done.len() as f64;
        format!(
            "; ETA {} ({left} {} left at the finished cells' mean of {}{})",
            crate::io::progress::human(mean * left as f64 / workers.max(1) as f64),
            if left == 1 { "cell" } else { "cells" },
            crate::io::progress::human(mean),
            if workers > 1 {
                format!(", {workers} at a time")
            } else {
                String::new()
            }
        )
    };
    Ok(format!(
        "sweep cell {}/{} ({}) starting: {} of {} finished{eta}",
        cell.index + 1,
        cells.len(),
        cell.id(),
        done.len(),
        cells.len()
    ))
}

/// Runs one cell (resuming its checkpoint if a previous attempt was killed) and records its row.
fn run_cell(cell: &Cell, data_dir: &Path, out: &Path) -> Result<Row> {
    let config = &cell_config(cell, out)?;
    let hash = train::config_hash_under(config, out);
    match stored_row(cell, out, &hash)? {
        Some((row, true)) => return Ok(row),
        Some((_, false)) => eprintln!(
            "sweep cell {}: its row is from another config or numerics version; training it again",
            cell.index
        ),
        None => {}
    }
    let dir = cell_dir(out, cell.index);
    let resume = train::can_resume(config, &dir);
    let o = train::train(config, data_dir, &dir, resume)
        .with_context(|| format!("sweep cell {} ({})", cell.index, cell.id()))?;
    let row = Row {
        index: cell.index,
        cell: cell.id(),
        seed: cell.seed,
        model: o.model_kind,
        bits_per_px: o.test.bits_per_px,
        sem: o.test.sem,
        tiles: o.test.tiles,
        parameters: o.parameters,
        train_seconds: o.train_seconds,
        eval_seconds: o.eval_seconds,
        git_commit: o.git_commit,
        config_hash: hash,
        numerics_version: train::NUMERICS_VERSION,
    };
    std::fs::create_dir_all(out.join("rows"))
        .with_context(|| format!("cannot create {}", out.join("rows").display()))?;
    write_atomic(
        &row_path(out, cell.index),
        serde_json::to_string(&row)?.as_bytes(),
    )?;
    // the model file keeps everything; the checkpoint was only for resuming (as a table row's)
    let _ = std::fs::remove_file(dir.join("checkpoint.safetensors"));
    Ok(row)
}

/// Runs the one cell `cell` of `cells` (a Slurm job of `--emit-slurm`), holding its lock: an
/// error if another process is training it or the cell it grows from has not finished.
pub fn run_cell_alone(cells: &[Cell], cell: &Cell, data_dir: &Path, out: &Path) -> Result<Row> {
    let _claim = match claim_cell(cells, cell, out)? {
        CellClaim::Finished => None,
        CellClaim::Train(lock) => Some(lock),
        CellClaim::Skip(why) => bail!(
            "sweep cell {}/{} ({}): {why}",
            cell.index + 1,
            cells.len(),
            cell.id()
        ),
    };
    run_cell(cell, data_dir, out)
}

/// Rebuilds `out/results.csv` from the row files (one row per finished cell, by index).
pub fn merge(out: &Path) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = vec![];
    if let Ok(entries) = std::fs::read_dir(out.join("rows")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("json") {
                let text = std::fs::read_to_string(&p)?;
                rows.push(
                    serde_json::from_str(&text)
                        .with_context(|| format!("bad row file {}", p.display()))?,
                );
            }
        }
    }
    rows.sort_by_key(|r| r.index);
    let mut w = csv::Writer::from_writer(vec![]);
    for r in &rows {
        w.serialize(r)?;
    }
    write_atomic(
        &out.join("results.csv"),
        &w.into_inner().context("writing CSV")?,
    )?;
    Ok(rows)
}

/// Runs every unfinished cell with `workers` cells at a time, merging after each; grown cells
/// after the cells they start from ([`levels`]). A cell another process is training (it holds
/// the cell's [`RunLock`]) is left to it, and so are the cells grown from it; all finished rows
/// on disk are returned, whoever trained them.
pub fn run(cells: &[Cell], data_dir: &Path, out: &Path, workers: usize) -> Result<Vec<Row>> {
    crate::limits::check("--workers", workers, 1, crate::limits::MAX_WORKERS)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut left = 0;
    for level in levels(cells) {
        left += run_level(cells, &level, data_dir, out, workers)?;
    }
    if left > 0 {
        eprintln!(
            "{left} of {} sweep cells left to other processes that are training them (or the cells they grow from); run this again once they finish",
            cells.len()
        );
    }
    merge(out)
}

/// What this process does with a cell.
enum CellClaim {
    /// its row is there: nothing to train
    Finished,
    /// train it, holding its lock
    Train(RunLock),
    /// leave it (why): another process holds its lock, or it grows from a cell that has not
    /// finished (left to the process training that one)
    Skip(String),
}

/// Decides a cell's [`CellClaim`], taking its lock when this process is to train it.
fn claim_cell(cells: &[Cell], cell: &Cell, out: &Path) -> Result<CellClaim> {
    if finished_row(cell, out)?.is_some() {
        return Ok(CellClaim::Finished);
    }
    if let Some(p) = cell.grown_from {
        if let Some(parent) = cells.get(p) {
            if finished_row(parent, out)?.is_none() {
                return Ok(CellClaim::Skip(format!(
                    "grows from sweep cell {}/{}, which has not finished",
                    p + 1,
                    cells.len()
                )));
            }
        }
    }
    Ok(match RunLock::try_acquire(&cell_dir(out, cell.index))? {
        Claim::Held(lock) => CellClaim::Train(lock),
        Claim::Busy(who) => CellClaim::Skip(format!("{who} is training it")),
    })
}

/// Runs the cells `level` (indices into `cells`), `workers` at a time; returns how many were
/// left to other processes.
fn run_level(
    cells: &[Cell],
    level: &[usize],
    data_dir: &Path,
    out: &Path,
    workers: usize,
) -> Result<usize> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let left = std::sync::atomic::AtomicUsize::new(0);
    let merge_lock = std::sync::Mutex::new(());
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(cell) = level.get(k).and_then(|&i| cells.get(i)) else {
                            return Ok(());
                        };
                        let claim = match claim_cell(cells, cell, out)? {
                            CellClaim::Finished => None,
                            CellClaim::Train(lock) => {
                                eprintln!("{}", start_line(cells, cell, out, workers)?);
                                Some(lock)
                            }
                            CellClaim::Skip(why) => {
                                eprintln!(
                                    "sweep cell {}/{} ({}): {why}; skipped here",
                                    cell.index + 1,
                                    cells.len(),
                                    cell.id()
                                );
                                left.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                continue;
                            }
                        };
                        let row = run_cell(cell, data_dir, out)?;
                        drop(claim);
                        let _guard = merge_lock
                            .lock()
                            .map_err(|_| anyhow::anyhow!("merge lock poisoned"))?;
                        merge(out)?;
                        eprintln!(
                            "sweep cell {}/{} ({}): {:.4} bit/px",
                            cell.index + 1,
                            cells.len(),
                            row.cell,
                            row.bits_per_px
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(left.into_inner())
}
