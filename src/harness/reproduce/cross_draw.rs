//! Claims between two trained rows whose test sets are different draws (dead leaves and
//! BSDS300 patches draw their test images with each row's seed, and a 2-layer row has another
//! seed than the 1-layer row it grows from): the better row's model is scored again on the
//! worse row's draw (`<better>/tiles_seed<N>.csv`), so that the report compares the two rows
//! tile by tile on one test set.

use super::run_table::score_again;
use super::table::{RowKind, Table};
use super::tiles_file::{read_tiles_file, write_tiles_file};
use crate::train::config::Experiment;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The file of a row's per-tile rates on the test draw of seed `seed`.
pub fn tiles_on_draw(row_dir: &Path, seed: u64) -> PathBuf {
    row_dir.join(format!("tiles_seed{seed}.csv"))
}

/// The row's files of rates on other draws: (seed, path), by seed.
fn other_draw_files(row_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(row_dir) else {
        return vec![];
    };
    let mut v: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let seed = name.strip_prefix("tiles_seed")?.strip_suffix(".csv")?;
            Some((seed.parse().ok()?, e.path()))
        })
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

/// Removes the row's rates on other draws: stale once its model is trained again.
pub fn remove_other_draws(row_dir: &Path) {
    for (_, f) in other_draw_files(row_dir) {
        let _ = std::fs::remove_file(f);
    }
}

/// A row's scores on other rows' test draws: (seed, mean, SEM over tiles), by seed.
pub fn scores_on_other_draws(row_dir: &Path) -> Vec<(u64, f64, f64)> {
    other_draw_files(row_dir)
        .into_iter()
        .filter_map(|(seed, f)| {
            let (bits, _) = read_tiles_file(&f)?;
            let (m, se) = crate::tasks::eval::mean_sem(&bits);
            Some((seed, m, se))
        })
        .collect()
}

/// The config of a trained row.
fn trained<'a>(table: &'a Table, id: &str) -> Option<&'a Experiment> {
    table
        .rows
        .iter()
        .find(|r| r.id == id)
        .and_then(|r| match &r.kind {
            RowKind::Train(cfg) => Some(cfg.as_ref()),
            _ => None,
        })
}

/// For each claim of the table between two finished trained rows scored on different draws,
/// scores the better row's model on the worse row's draw, unless that was done before.
pub fn score_claims_on_one_draw(table: &Table, data_dir: &Path, out: &Path) -> Result<()> {
    if !table.base.data.test_set_drawn_with_seed() {
        return Ok(());
    }
    for c in &table.config.claims {
        let (Some(b), Some(w)) = (trained(table, &c.better), trained(table, &c.worse)) else {
            continue;
        };
        let bdir = out.join(&c.better);
        let model = bdir.join("model.safetensors");
        if b.seed == w.seed || !model.exists() || !bdir.join("row.json").exists() {
            continue;
        }
        let Some((worse_tiles, _)) = super::tiles_file::read_tiles(&out.join(&c.worse)) else {
            continue;
        };
        let file = tiles_on_draw(&bdir, w.seed);
        if read_tiles_file(&file).is_some_and(|(t, _)| t.len() == worse_tiles.len()) {
            continue;
        }
        let m = crate::io::modelfile::load(&model)?;
        let s = score_again(w, data_dir, &m)?;
        write_tiles_file(&file, &s.per_tile, None)?;
        eprintln!(
            "[{}] {}: scored again on the test draw of {} (seed {}): {:.4} ± {:.4} bit/px",
            table.config.name, c.better, c.worse, w.seed, s.bits_per_px, s.sem
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retrained_row_drops_its_rates_on_other_draws() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = tiles_on_draw(dir.path(), 1);
        write_tiles_file(&other, &[1.0, 2.0], None).expect("write");
        std::fs::write(dir.path().join("tiles.csv"), "tile,bits\n0,1\n").expect("write");
        assert_eq!(read_tiles_file(&other).map(|t| t.0.len()), Some(2));
        let on = scores_on_other_draws(dir.path());
        assert_eq!(on, vec![(1, 1.5, 0.5)]);
        remove_other_draws(dir.path());
        assert!(!other.exists());
        assert!(dir.path().join("tiles.csv").exists());
    }
}
