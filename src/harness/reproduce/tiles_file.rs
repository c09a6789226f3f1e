//! Each scored row's per-tile rates (`<row>/tiles.csv`: tile, bits[, single_bits]; a patch data
//! set has one "tile" per test patch), so that two rows scored on the same tiles are compared
//! tile by tile: the SEM of a paired difference is far smaller than the two rows' SEMs combined,
//! because tiles differ much more from each other than models do on one tile.

use crate::io::files::write_atomic;
use crate::tasks::eval::mean_sem;
use anyhow::{Context, Result};
use std::path::Path;

const FILE: &str = "tiles.csv";

/// Writes `dir/tiles.csv`: each tile's rate and, for an ensemble, its single model's rate on
/// the same pixels.
pub fn write_tiles(dir: &Path, bits: &[f64], single: Option<&[f64]>) -> Result<()> {
    write_tiles_file(&dir.join(FILE), bits, single)
}

/// [`write_tiles`] to the file `path`.
pub fn write_tiles_file(path: &Path, bits: &[f64], single: Option<&[f64]>) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    match single {
        Some(_) => w.write_record(["tile", "bits", "single_bits"])?,
        None => w.write_record(["tile", "bits"])?,
    }
    for (k, b) in bits.iter().enumerate() {
        let mut rec = vec![k.to_string(), b.to_string()];
        if let Some(s) = single.and_then(|s| s.get(k)) {
            rec.push(s.to_string());
        }
        w.write_record(&rec)?;
    }
    write_atomic(path, &w.into_inner().context("writing CSV")?)
}

/// A row's tiles: (rates, single-model rates of an ensemble), if the file is there and whole.
pub fn read_tiles(dir: &Path) -> Option<(Vec<f64>, Option<Vec<f64>>)> {
    read_tiles_file(&dir.join(FILE))
}

/// [`read_tiles`] from the file `path`.
pub fn read_tiles_file(path: &Path) -> Option<(Vec<f64>, Option<Vec<f64>>)> {
    let mut r = csv::Reader::from_path(path).ok()?;
    let (mut bits, mut single) = (vec![], vec![]);
    for rec in r.records() {
        let rec = rec.ok()?;
        bits.push(rec.get(1)?.parse::<f64>().ok()?);
        if let Some(s) = rec.get(2) {
            single.push(s.parse::<f64>().ok()?);
        }
    }
    let single = (!single.is_empty()).then_some(single);
    Some((bits, single))
}

/// Whether the file is there with `n` tiles.
pub fn has_tiles(dir: &Path, n: usize) -> bool {
    read_tiles(dir).is_some_and(|(b, _)| b.len() == n)
}

/// Mean and SEM over tiles of `better − worse`, tile by tile (same tiles in the same order).
pub fn paired(better: &[f64], worse: &[f64]) -> Option<(f64, f64)> {
    if better.len() != worse.len() || better.len() < 2 {
        return None;
    }
    let d: Vec<f64> = better.iter().zip(worse).map(|(b, w)| b - w).collect();
    Some(mean_sem(&d))
}
