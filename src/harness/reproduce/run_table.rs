//! Runs a resolved [`Table`]: trains/scores every row (reusing a finished row whose config is
//! unchanged, resuming a killed one from its checkpoint), writes `table.csv`, samples and the
//! figures (learning curves, samples).

use super::table::{Row, RowKind, SampleSpec, Table, TableConfig};
use super::tiles_file::{has_tiles, write_tiles};
use super::{fnv, TableRow};
use crate::io::files::write_atomic;
use crate::io::plot::{image_grid, line_plot, LinePlot, Panel, Series};
use crate::io::run_lock::{Claim, RunLock};
use crate::model::ride::Ride;
use crate::tasks::eval::{ensemble_tile_bits, tiles, Score};
use crate::train::config::Experiment;
use crate::train::dataset::load_data;
use crate::train::{config_hash, fnv1a_hex, read_log, score_images};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

/// Trains/scores every row into `out/<row id>/` and writes `out/table.csv` and the figures.
pub fn run_table(
    table: &Table,
    data_dir: &Path,
    out: &Path,
    progress: &mut super::suite_progress::SuiteProgress,
) -> Result<Vec<TableRow>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut done: Vec<TableRow> = vec![];
    for (k, row) in table.rows.iter().enumerate() {
        progress.next(
            1,
            &format!(
                "table {}, row {} ({})",
                table.config.name, row.id, row.label
            ),
        );
        eprintln!(
            "[{}] row {}/{}: {} ({})",
            table.config.name,
            k + 1,
            table.rows.len(),
            row.id,
            row.label
        );
        match run_row(table, row, data_dir, out, &done)? {
            Some(r) => {
                eprintln!(
                    "[{}] {}: {:.4} ± {:.4} bit/px",
                    table.config.name, row.id, r.bits_per_px, r.sem
                );
                done.push(r);
            }
            None => eprintln!("[{}] {}: skipped", table.config.name, row.id),
        }
        write_csv(&out.join("table.csv"), &done)?;
    }
    super::cross_draw::score_claims_on_one_draw(table, data_dir, out)?;
    learning_curves(table, out)?;
    if let Some(spec) = &table.samples {
        samples(table, spec, data_dir, out)?;
    }
    Ok(done)
}

/// Trains/scores the single row `id` (a Slurm job of `ride reproduce --emit-slurm`): the rows
/// it depends on must have finished (their `row.json` is read); writes only `out/<id>/`.
pub fn run_table_row(table: &Table, id: &str, data_dir: &Path, out: &Path) -> Result<TableRow> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let row = table.rows.iter().find(|r| r.id == id).with_context(|| {
        let ids: Vec<&str> = table.rows.iter().map(|r| r.id.as_str()).collect();
        format!(
            "--row {id}: table '{}' has rows {}",
            table.config.name,
            ids.join(", ")
        )
    })?;
    // other rows' jobs may run beside this one, a whole-table run may not; nor this row twice
    let busy = |who: String| {
        anyhow::anyhow!(
            "table '{}', row '{id}': {who} is running it; not started",
            table.config.name
        )
    };
    let _table_claim = match RunLock::try_acquire_shared(out)? {
        Claim::Held(lock) => lock,
        Claim::Busy(who) => return Err(busy(who)),
    };
    let _row_claim = match RunLock::try_acquire(&out.join(id))? {
        Claim::Held(lock) => lock,
        Claim::Busy(who) => return Err(busy(who)),
    };
    // the finished rows this one may start from or ensemble
    let done: Vec<TableRow> = table
        .rows
        .iter()
        .filter_map(|r| std::fs::read_to_string(out.join(&r.id).join("row.json")).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    let r = run_row(table, row, data_dir, out, &done)?
        .with_context(|| format!("table '{}', row '{id}': nothing to run", table.config.name))?;
    eprintln!(
        "[{}] {id}: {:.4} ± {:.4} bit/px",
        table.config.name, r.bits_per_px, r.sem
    );
    Ok(r)
}

/// Writes rows as CSV (atomically).
pub fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    write_atomic(path, &w.into_inner().context("writing CSV")?)
}

fn describe(m: &Ride<f32>) -> String {
    let mix = m.mixture_size();
    if m.layers.is_empty() {
        format!(
            "MCGSM nb_size {} (C {}, S {}, F {})",
            m.nb.cols, mix.components, mix.scales, mix.features
        )
    } else {
        let hs: Vec<String> = m.layers.iter().map(|l| l.h().to_string()).collect();
        format!(
            "RIDE {} layer{} (H {}; C {}, S {}, F {}; nb_size {})",
            m.layers.len(),
            if m.layers.len() == 1 { "" } else { "s" },
            hs.join("+"),
            mix.components,
            mix.scales,
            mix.features,
            m.nb.cols
        )
    }
}

fn test_images(
    cfg: &Experiment,
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<Vec<crate::io::images::GrayImage>> {
    let mut test = load_data(cfg, data_dir)?.test;
    if let Some(n) = limit {
        test.truncate(n);
    }
    Ok(test)
}

fn run_row(
    table: &Table,
    row: &Row,
    data_dir: &Path,
    out: &Path,
    done: &[TableRow],
) -> Result<Option<TableRow>> {
    let dir = out.join(&row.id);
    let cached = |hash: &str| -> Option<TableRow> {
        let text = std::fs::read_to_string(dir.join("row.json")).ok()?;
        let r: TableRow = serde_json::from_str(&text).ok()?;
        (r.config_hash == hash
            && r.scale == table.scale
            && r.numerics_version == crate::train::NUMERICS_VERSION)
            .then_some(r)
    };
    let base_hash = config_hash(&table.base);
    let mut r = match &row.kind {
        RowKind::Train(cfg) => {
            let hash = crate::train::config_hash_under(cfg, out);
            if let Some(r) = cached(&hash) {
                eprintln!(
                    "[{}] {}: finished earlier, reused",
                    table.config.name, row.id
                );
                if !has_tiles(&dir, r.tiles) {
                    let m = crate::io::modelfile::load(&dir.join("model.safetensors"))?;
                    let s = score_again(cfg, data_dir, &m)?;
                    backfill_tiles(&dir, &r, &s, None)?;
                }
                return Ok(Some(r));
            }
            let resume = crate::train::can_resume(cfg, &dir);
            let o = crate::train::train(cfg, data_dir, &dir, resume).with_context(|| {
                format!(
                    "table '{}', row '{}' (delete {} to start it afresh)",
                    table.config.name,
                    row.id,
                    dir.display()
                )
            })?;
            let m = crate::io::modelfile::load(&dir.join("model.safetensors"))?;
            // the model file keeps everything; the checkpoint is only for resuming
            let _ = std::fs::remove_file(dir.join("checkpoint.safetensors"));
            super::cross_draw::remove_other_draws(&dir);
            write_tiles(&dir, &o.test.per_tile, None)?;
            TableRow {
                experiment: table.config.name.clone(),
                row: row.id.clone(),
                label: row.label.clone(),
                model: describe(&m),
                bits_per_px: o.test.bits_per_px,
                sem: o.test.sem,
                tiles: o.test.tiles,
                pixels: o.test.pixels,
                parameters: o.parameters,
                train_seconds: Some(o.train_seconds),
                eval_seconds: o.eval_seconds,
                scale: table.scale.clone(),
                seed: cfg.seed,
                git_commit: o.git_commit,
                config_hash: hash,
                note: [
                    o.patches.as_ref().map(|p| format!(
                        "{} test patches: 63 dims (DC removed) {:.2} ± {:.2} nats, 64 dims (+ log p(DC) + log 1/64) {:.2} ± {:.2} nats",
                        p.score.tiles, p.nats63, p.nats63_sem, p.nats64, p.nats64_sem
                    )),
                    o.stopped_early
                        .then(|| "stopped early on the validation images".to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
                single_bits_per_px: None,
                single_sem: None,
                numerics_version: crate::train::NUMERICS_VERSION,
            }
        }
        RowKind::Ensemble { of, test_images: n } => {
            let src = done
                .iter()
                .find(|d| d.row == *of)
                .with_context(|| format!("row '{}': row '{of}' has no result", row.id))?;
            let hash = fnv(&format!(
                "ensemble+single {} {n:?} {base_hash}",
                src.config_hash
            ));
            let cached_row = cached(&hash);
            if cached_row
                .as_ref()
                .is_some_and(|r| has_tiles(&dir, r.tiles))
            {
                return Ok(cached_row);
            }
            let m = crate::io::modelfile::load(&out.join(of).join("model.safetensors"))?;
            let imgs = test_images(&table.base, data_dir, *n)?;
            let t0 = Instant::now();
            let (e, s) = score_ensemble(&m, &imgs, table.base.evaluation.tile)?;
            if let Some(r) = cached_row {
                backfill_tiles(&dir, &r, &e, Some(&s))?;
                return Ok(Some(r));
            }
            write_tiles(&dir, &e.per_tile, Some(&s.per_tile))?;
            TableRow {
                experiment: table.config.name.clone(),
                row: row.id.clone(),
                label: row.label.clone(),
                model: format!("EoRIDE (8 flips/transposes) of {}", src.model),
                bits_per_px: e.bits_per_px,
                sem: e.sem,
                tiles: e.tiles,
                pixels: e.pixels,
                parameters: src.parameters,
                train_seconds: src.train_seconds,
                eval_seconds: t0.elapsed().as_secs_f64(),
                scale: table.scale.clone(),
                seed: src.seed,
                git_commit: crate::io::provenance::git_commit(),
                config_hash: hash,
                note: format!(
                    "over the {} pixels per tile all 8 transforms predict, {} test images; the single model on the same pixels: {:.4} ± {:.4}",
                    e.pixels / e.tiles.max(1),
                    imgs.len(),
                    s.bits_per_px,
                    s.sem
                ),
                single_bits_per_px: Some(s.bits_per_px),
                single_sem: Some(s.sem),
                numerics_version: crate::train::NUMERICS_VERSION,
            }
        }
        RowKind::ModelFile {
            path,
            test_images: n,
        } => {
            if !path.is_file() {
                eprintln!(
                    "warning: table '{}', row '{}': {} not found; row skipped",
                    table.config.name,
                    row.id,
                    path.display()
                );
                return Ok(None);
            }
            let bytes = std::fs::read(path)?;
            let hash = fnv(&format!(
                "file {} {} {n:?} {base_hash}",
                path.display(),
                fnv1a_hex(&bytes)
            ));
            let cached_row = cached(&hash);
            if cached_row
                .as_ref()
                .is_some_and(|r| has_tiles(&dir, r.tiles))
            {
                return Ok(cached_row);
            }
            let m = crate::io::modelfile::load(path)
                .with_context(|| format!("loading {}", path.display()))?;
            let imgs = test_images(&table.base, data_dir, *n)?;
            let t0 = Instant::now();
            let s = score_images(&m, &imgs, table.base.evaluation.tile)?;
            if let Some(r) = cached_row {
                backfill_tiles(&dir, &r, &s, None)?;
                return Ok(Some(r));
            }
            std::fs::create_dir_all(&dir)?;
            write_tiles(&dir, &s.per_tile, None)?;
            TableRow {
                experiment: table.config.name.clone(),
                row: row.id.clone(),
                label: row.label.clone(),
                model: describe(&m),
                bits_per_px: s.bits_per_px,
                sem: s.sem,
                tiles: s.tiles,
                pixels: s.pixels,
                parameters: m.num_params(),
                train_seconds: None,
                eval_seconds: t0.elapsed().as_secs_f64(),
                scale: table.scale.clone(),
                seed: table.base.seed,
                git_commit: crate::io::provenance::git_commit(),
                config_hash: hash,
                note: format!("{} scored on {} test images", path.display(), imgs.len()),
                single_bits_per_px: None,
                single_sem: None,
                numerics_version: crate::train::NUMERICS_VERSION,
            }
        }
    };
    r.note = r.note.trim().to_string();
    std::fs::create_dir_all(&dir)?;
    write_atomic(
        &dir.join("row.json"),
        serde_json::to_string_pretty(&r)?.as_bytes(),
    )?;
    Ok(Some(r))
}

/// A trained row's test score computed again from its model file, as training scored it: its
/// test images' tiles, or, for a patch data set, its test patches (one "tile" per patch).
pub(super) fn score_again(cfg: &Experiment, data_dir: &Path, m: &Ride<f32>) -> Result<Score> {
    if crate::train::dataset::patch_canvas(cfg)?.is_none() {
        let imgs = test_images(cfg, data_dir, None)?;
        return score_images(m, &imgs, cfg.evaluation.tile);
    }
    let ds = load_data(cfg, data_dir)?;
    let Some((dc_train, dc_test)) = ds.dc else {
        anyhow::bail!("{}: a patch data set without DC components", cfg.name);
    };
    Ok(crate::train::score_patches(m, &ds.test, &dc_train, &dc_test)?.score)
}

/// Writes the tiles of a row reused from an earlier run, scored again now: the new score must
/// be the row's (else the row cannot be reproduced and nothing is written).
fn backfill_tiles(dir: &Path, r: &TableRow, s: &Score, single: Option<&Score>) -> Result<()> {
    if s.tiles != r.tiles || s.bits_per_px != r.bits_per_px {
        anyhow::bail!(
            "{}: scored again for its tiles, the model gives {} bit/px over {} tiles, the row says {} over {}: the row does not reproduce",
            dir.display(),
            s.bits_per_px,
            s.tiles,
            r.bits_per_px,
            r.tiles
        );
    }
    eprintln!(
        "[{}] {}: per-tile rates written (scored again, same {:.4} bit/px)",
        r.experiment, r.row, r.bits_per_px
    );
    write_tiles(dir, &s.per_tile, single.map(|s| s.per_tile.as_slice()))
}

/// Moving average over `k` values (k/2 each side), for readable per-batch learning curves.
pub fn smooth(y: &[f64], k: usize) -> Vec<f64> {
    let h = k / 2;
    (0..y.len())
        .map(|i| {
            let (a, b) = (i.saturating_sub(h), (i + h + 1).min(y.len()));
            y[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect()
}

fn learning_curves(table: &Table, out: &Path) -> Result<()> {
    let mut series = vec![];
    for row in &table.rows {
        if !matches!(row.kind, RowKind::Train(_)) {
            continue;
        }
        let log = read_log(&out.join(&row.id).join("train_log.csv"), usize::MAX)?;
        if log.is_empty() {
            continue;
        }
        let y: Vec<f64> = log.iter().map(|l| l.bits_per_px).collect();
        let k = (y.len() / 100).clamp(1, 50);
        series.push(Series {
            label: row.label.clone(),
            x: (1..=y.len()).map(|i| i as f64).collect(),
            y: smooth(&y, k),
            ..Default::default()
        });
    }
    if series.is_empty() {
        return Ok(());
    }
    line_plot(
        &LinePlot {
            title: format!(
                "{}: learning curves ({} scale)",
                table.config.title, table.scale
            ),
            x_label: "mini-batch".into(),
            y_label: "training log-likelihood rate [bit/px] (moving average)".into(),
            series,
            log_x: false,
            points: false,
        },
        &out.join("learning_curves"),
    )
}

/// Percentile (0–100) of values by sorting a strided subset of at most 10⁶ of them.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let stride = (values.len() / 1_000_000).max(1);
    let mut v: Vec<f64> = values
        .iter()
        .step_by(stride)
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// A `size`×`size` crop of the training images of median contrast: of all their
/// non-overlapping crops, the one whose pixels' standard deviation is the median — what a
/// sample should be compared with (the first image's corner may be flat sky). `None` without
/// images; an image smaller than `size` gives its whole self.
fn typical_crop(
    images: &[crate::io::images::GrayImage],
    size: usize,
) -> Option<(Vec<f64>, usize, usize)> {
    let size = size.max(1);
    let cut = |g: &crate::io::images::GrayImage, top: usize, left: usize, h: usize, w: usize| {
        (0..h)
            .flat_map(|i| &g.data[(top + i) * g.w + left..][..w])
            .copied()
            .collect::<Vec<f64>>()
    };
    // (standard deviation, image, top, left, h, w): positions only, a crop is cut again once
    let mut crops: Vec<(f64, usize, usize, usize, usize, usize)> = vec![];
    for (k, g) in images.iter().enumerate() {
        let (h, w) = (size.min(g.h), size.min(g.w));
        for top in (0..=g.h - h).step_by(h.max(1)) {
            for left in (0..=g.w - w).step_by(w.max(1)) {
                let crop = cut(g, top, left, h, w);
                let n = crop.len().max(1) as f64;
                let mean = crop.iter().sum::<f64>() / n;
                let sd = (crop.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
                crops.push((sd, k, top, left, h, w));
            }
        }
    }
    crops.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(_, k, top, left, h, w) = crops.get(crops.len() / 2)?;
    Some((cut(&images[k], top, left, h, w), h, w))
}

fn samples(table: &Table, spec: &SampleSpec, data_dir: &Path, out: &Path) -> Result<()> {
    let mut lines: Vec<(String, Vec<Panel>)> = vec![];
    for row in &table.rows {
        let RowKind::Train(cfg) = &row.kind else {
            continue;
        };
        let model_path = out.join(&row.id).join("model.safetensors");
        if !model_path.is_file() {
            continue;
        }
        let m = crate::io::modelfile::load(&model_path)?;
        let train = load_data(cfg, data_dir)?.train;
        let pixels: Vec<f64> = train.iter().flat_map(|g| g.data.iter().copied()).collect();
        let lo = percentile(&pixels, 0.5);
        let hi = percentile(&pixels, 99.5);
        let clip = spec
            .clip_percentiles
            .map(|[a, b]| (percentile(&pixels, a), percentile(&pixels, b)));
        let t0 = Instant::now();
        let opts = crate::tasks::sample::SampleOptions {
            margin: spec.margin.max(crate::tasks::sample::min_margin(&m.nb)),
            seed: spec.seed,
            clip,
            ..Default::default()
        };
        let s = crate::tasks::sample::sample(&m, spec.size, spec.size, &opts)
            .with_context(|| format!("sampling row '{}'", row.id))?;
        let secs = t0.elapsed().as_secs_f64();
        let group = row.group.clone().unwrap_or_else(|| "samples".into());
        let line = match lines.iter().position(|(g, _)| *g == group) {
            Some(i) => i,
            None => {
                let mut panels = vec![];
                if spec.show_training {
                    if let Some((crop, h, w)) = typical_crop(&train, spec.size) {
                        panels.push(Panel {
                            title: format!("{group}: training data"),
                            image: crop,
                            h,
                            w,
                            range: (lo, hi),
                        });
                    }
                }
                lines.push((group.clone(), panels));
                lines.len() - 1
            }
        };
        let meta = serde_json::json!({
            "row": row.id, "size": spec.size, "margin": opts.margin, "seed": spec.seed,
            "clip": clip, "display_range": [lo, hi], "seconds": secs,
            "git_commit": crate::io::provenance::git_commit(),
        });
        let stem = out.join(&row.id).join("sample");
        write_atomic(
            &stem.with_extension("json"),
            serde_json::to_string_pretty(&meta)?.as_bytes(),
        )?;
        lines[line].1.push(Panel {
            title: format!("{}: {}", group, row.label),
            image: s.image,
            h: spec.size,
            w: spec.size,
            range: (lo, hi),
        });
    }
    if lines.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<Panel>> = lines.into_iter().map(|(_, p)| p).collect();
    image_grid(
        &format!(
            "{}: samples {}×{} (seed {}, {} scale)",
            table.config.title, spec.size, spec.size, spec.seed, table.scale
        ),
        &rows,
        &out.join("samples"),
    )
}

/// The finished rows of table `name` under `out` in its config's order: each row's `row.json`
/// (written as the row finishes, also by a single-row `--row` run that writes no `table.csv`),
/// or `table.csv` where no row file is there (a layout without them).
pub fn table_rows(experiments: &Path, out: &Path, name: &str) -> Vec<TableRow> {
    let dir = out.join(name);
    let from_files: Vec<TableRow> = TableConfig::load(&experiments.join(format!("{name}.toml")))
        .map(|cfg| {
            cfg.rows
                .iter()
                .filter_map(|r| std::fs::read_to_string(dir.join(&r.id).join("row.json")).ok())
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default();
    if from_files.is_empty() {
        read_rows(&dir.join("table.csv")).unwrap_or_default()
    } else {
        from_files
    }
}

/// Reads a table CSV written by [`write_csv`].
pub fn read_rows(path: &Path) -> Result<Vec<TableRow>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("{}", path.display()))?;
    r.deserialize()
        .map(|x| x.with_context(|| format!("bad row in {}", path.display())))
        .collect()
}

/// EoRIDE and the single model over the pixels all 8 transforms predict, for whole images in
/// model units cut into `t × t` tiles: (ensemble score, single-model score on the same pixels).
fn score_ensemble(
    model: &crate::model::ride::Ride<f32>,
    images: &[crate::io::images::GrayImage],
    t: usize,
) -> Result<(Score, Score)> {
    let (mut ens, mut single) = (vec![], vec![]);
    let mut n_common = 0;
    for g in images {
        let t = t.min(g.h).min(g.w);
        let r = ensemble_tile_bits(model, &tiles(&g.data, g.h, g.w, t), t, 16)
            .with_context(|| format!("scoring {} under 8 transforms", g.name))?;
        n_common = r.pixels_per_tile;
        ens.extend(r.ensemble);
        single.extend(r.single);
    }
    let pixels = ens.len() * n_common;
    Ok((
        Score::from_tiles(&ens, pixels),
        Score::from_tiles(&single, pixels),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::images::GrayImage;

    fn image(h: usize, w: usize, f: impl Fn(usize, usize) -> f64) -> GrayImage {
        GrayImage {
            name: "x".into(),
            h,
            w,
            data: (0..h * w).map(|k| f(k / w, k % w)).collect(),
        }
    }

    /// The training panel is the crop of median contrast over every image's crops, not the
    /// first image's corner; a small image gives itself; no images, no crop.
    #[test]
    fn typical_crop_has_the_median_contrast() {
        let flat = image(4, 4, |_, _| 7.0);
        // 2×2 crops alternating 0 / a along the columns, a = 1, 2, 4, 6 (sd a / 2)
        let amp = [[1.0, 2.0], [4.0, 6.0]];
        let busy = image(4, 4, |i, j| amp[i / 2][j / 2] * (j % 2) as f64);
        // sds: flat 0 0 0 0, busy 0.5 1 2 3 → the median (index 4 of 8) is busy's corner
        let (crop, h, w) = typical_crop(&[flat.clone(), busy], 2).unwrap();
        assert_eq!((h, w), (2, 2));
        assert_eq!(crop, vec![0.0, 1.0, 0.0, 1.0]);
        let (crop, h, w) = typical_crop(std::slice::from_ref(&flat), 8).unwrap();
        assert_eq!((h, w, crop.len()), (4, 4, 16));
        assert!(typical_crop(&[], 2).is_none());
    }
}
