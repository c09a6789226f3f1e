//! The codec comparison (`ride codec-compare`, `make codec`): RIDE and MCGSM models as
//! lossless codecs ([`crate::codec`]) against PNG, WebP and JPEG XL ([`external`]) on whole
//! data sets, every file decoded again and checked. Writes per image `images.csv`, per data
//! set and codec `summary.csv` / `summary.md` (mean bit/px ± SEM over images, the paired
//! difference to JPEG XL, encode and decode px/s), a figure per data set (every image's
//! bit/px, images sorted by JPEG XL's) and the tile-size study (`tiles.csv`, `tiles.png`):
//! what the tiles' restarts cost. Each image × codec result is kept (`cache/`, a RIDE
//! result under its model's hash and the codec's versions), so a killed run resumes and a
//! changed model or codec is coded again.

pub mod external;

use crate::codec::{self, Gray8};
use crate::harness::reproduce::run_table::write_csv;
use crate::io::plot::{line_plot, LinePlot, Series};
use anyhow::{bail, Context, Result};
use external::External;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `experiments/codec.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    pub name: String,
    /// Tile size of the RIDE codec.
    pub tile: usize,
    pub datasets: Vec<DatasetSpec>,
    pub models: Vec<ModelSpec>,
    /// Standard codecs: "png", "webp", "jxl".
    pub external: Vec<String>,
    pub tile_study: Option<TileStudy>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub id: String,
    pub label: String,
    /// Folder under the data directory.
    pub dir: String,
    /// Only these files of the folder (default: every image, sorted by name).
    pub files: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub id: String,
    pub label: String,
    /// Model file, relative to the repository root.
    pub path: PathBuf,
}

/// The RIDE codec of one model at several tile sizes on the first images of a data set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileStudy {
    pub dataset: String,
    pub model: String,
    pub images: usize,
    pub tiles: Vec<usize>,
}

/// One image coded by one codec.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodecRow {
    pub dataset: String,
    pub image: String,
    pub codec: String,
    pub label: String,
    pub tile: Option<usize>,
    pub h: usize,
    pub w: usize,
    pub bytes: usize,
    pub bits_per_px: f64,
    /// The model's discrete code length on the coded cells (RIDE codecs), bit/px.
    pub discrete_bits_per_px: Option<f64>,
    pub encode_s: f64,
    pub decode_s: f64,
    /// The commit of the ride binary that coded it.
    #[serde(default)]
    pub git_commit: String,
}

/// One data set × codec.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub dataset: String,
    pub codec: String,
    pub label: String,
    pub images: usize,
    pub bits_per_px: f64,
    pub sem: f64,
    /// Mean over images of (this codec − JPEG XL) bit/px, and its SEM.
    pub minus_jxl: Option<f64>,
    pub minus_jxl_sem: Option<f64>,
    pub encode_px_per_s: f64,
    pub decode_px_per_s: f64,
}

/// Options of a run.
pub struct Options {
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub out: PathBuf,
    /// Only the first N images of each data set (a quick run).
    pub limit: Option<usize>,
}

pub fn load_config(path: &Path) -> Result<CompareConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let c: CompareConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for e in &c.external {
        e.parse::<External>()
            .with_context(|| format!("{}: external", path.display()))?;
    }
    if let Some(t) = &c.tile_study {
        if !c.datasets.iter().any(|d| d.id == t.dataset)
            || !c.models.iter().any(|m| m.id == t.model)
        {
            bail!(
                "{}: tile_study names data set '{}' and model '{}', not both listed",
                path.display(),
                t.dataset,
                t.model
            );
        }
    }
    Ok(c)
}

fn dataset_images(d: &DatasetSpec, data_dir: &Path, limit: Option<usize>) -> Result<Vec<PathBuf>> {
    let dir = data_dir.join(&d.dir);
    if !dir.is_dir() {
        bail!(
            "data set '{}': {} does not exist (run `make data` or pass --data-dir)",
            d.id,
            dir.display()
        );
    }
    let mut files = match &d.files {
        Some(f) => f.iter().map(|n| dir.join(n)).collect(),
        None => crate::io::images::expand_inputs(std::slice::from_ref(&dir))?,
    };
    if let Some(n) = limit {
        files.truncate(n);
    }
    Ok(files)
}

fn image_name(p: &Path) -> String {
    p.file_stem().map_or_else(
        || p.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// What a RIDE codec's result depends on: the model (its hash), the file format and the
/// per-cell arithmetic's version.
fn cache_key(model: &crate::model::ride::Ride<f32>) -> Result<String> {
    Ok(format!(
        "{}_f{}r{}",
        &codec::container::hex(&codec::model_hash(model)?)[..12],
        codec::container::FORMAT_VERSION,
        crate::model::raster::RASTER_VERSION
    ))
}

/// A cached row, or runs `f` and keeps its row.
fn cached(path: &Path, f: impl FnOnce() -> Result<CodecRow>) -> Result<CodecRow> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(r) = serde_json::from_str::<CodecRow>(&text) {
            return Ok(r);
        }
    }
    let r = f()?;
    crate::io::files::write_atomic(path, serde_json::to_string_pretty(&r)?.as_bytes())?;
    Ok(r)
}

/// RIDE codec of one image, decoded again and checked.
fn ride_row(
    m: &ModelSpec,
    model: &crate::model::ride::Ride<f32>,
    dataset: &str,
    name: &str,
    img: &Gray8,
    tile: usize,
) -> Result<CodecRow> {
    let t0 = Instant::now();
    let c = codec::compress(model, img, tile)?;
    let encode_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let back = codec::decompress(model, &c.bytes)?;
    let decode_s = t0.elapsed().as_secs_f64();
    if back != *img {
        bail!("{name}: the {} codec did not round-trip", m.id);
    }
    let px = (img.h * img.w) as f64;
    Ok(CodecRow {
        dataset: dataset.into(),
        image: name.into(),
        codec: m.id.clone(),
        label: m.label.clone(),
        tile: Some(tile),
        h: img.h,
        w: img.w,
        bytes: c.bytes.len(),
        bits_per_px: c.bytes.len() as f64 * 8.0 / px,
        discrete_bits_per_px: Some(c.discrete_bits / px),
        encode_s,
        decode_s,
        git_commit: crate::io::provenance::git_commit(),
    })
}

/// Mean and SEM over images ([`crate::tasks::eval::mean_sem`]); no SEM for a single image.
fn mean_sem(v: &[f64]) -> (f64, f64) {
    let (m, sem) = crate::tasks::eval::mean_sem(v);
    (m, if v.len() < 2 { f64::NAN } else { sem })
}

/// (id, label) of every codec of the comparison: the models', then the standard codecs'.
fn codecs(cfg: &CompareConfig) -> Vec<(String, String)> {
    cfg.models
        .iter()
        .map(|m| (m.id.clone(), m.label.clone()))
        .chain(cfg.external.iter().filter_map(|e| {
            let e: External = e.parse().ok()?;
            Some((e.id().to_string(), e.label().to_string()))
        }))
        .collect()
}

/// Runs the comparison; returns the summary rows.
pub fn run(opts: &Options) -> Result<Vec<SummaryRow>> {
    let cfg = load_config(&opts.config)?;
    let externals: Vec<External> = cfg
        .external
        .iter()
        .map(|e| e.parse())
        .collect::<Result<_>>()?;
    for e in &externals {
        e.check_tools()?;
    }
    let models = cfg
        .models
        .iter()
        .map(|m| {
            crate::io::modelfile::load(&m.path)
                .with_context(|| format!("model '{}': {}", m.id, m.path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    // a cached RIDE result is reused only for the same model file and codec arithmetic
    let keys = models
        .iter()
        .map(cache_key)
        .collect::<Result<Vec<String>>>()?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    // the standard codecs' files (removed at the end)
    let scratch = opts.out.join(".scratch");
    std::fs::create_dir_all(&scratch)?;
    let mut rows: Vec<CodecRow> = vec![];
    let mut tile_rows: Vec<CodecRow> = vec![];
    for d in &cfg.datasets {
        let files = dataset_images(d, &opts.data_dir, opts.limit)?;
        for (i, f) in files.iter().enumerate() {
            let img = codec::read_image(f)?;
            let name = image_name(f);
            let cache = opts.out.join("cache").join(&d.id);
            for ((m, model), key) in cfg.models.iter().zip(&models).zip(&keys) {
                let p = cache.join(format!("{name}__{}_t{}_{key}.json", m.id, cfg.tile));
                let r = cached(&p, || ride_row(m, model, &d.id, &name, &img, cfg.tile))
                    .with_context(|| format!("{}: {}", f.display(), m.id))?;
                println!(
                    "[codec] {} {}/{} {name} {}: {:.4} bit/px",
                    d.id,
                    i + 1,
                    files.len(),
                    m.id,
                    r.bits_per_px
                );
                rows.push(r);
            }
            for e in &externals {
                let p = cache.join(format!("{name}__{}.json", e.id()));
                let r = cached(&p, || {
                    let (bytes, encode_s, decode_s) = e.run(&img, &scratch)?;
                    Ok(CodecRow {
                        dataset: d.id.clone(),
                        image: name.clone(),
                        codec: e.id().into(),
                        label: e.label().into(),
                        tile: None,
                        h: img.h,
                        w: img.w,
                        bytes,
                        bits_per_px: bytes as f64 * 8.0 / (img.h * img.w) as f64,
                        discrete_bits_per_px: None,
                        encode_s,
                        decode_s,
                        git_commit: crate::io::provenance::git_commit(),
                    })
                })
                .with_context(|| format!("{}: {}", f.display(), e.id()))?;
                println!(
                    "[codec] {} {}/{} {name} {}: {:.4} bit/px",
                    d.id,
                    i + 1,
                    files.len(),
                    e.id(),
                    r.bits_per_px
                );
                rows.push(r);
            }
            if let Some(t) = cfg.tile_study.as_ref().filter(|t| t.dataset == d.id) {
                if i < t.images {
                    let k = cfg.models.iter().position(|m| m.id == t.model).unwrap_or(0);
                    for &tile in &t.tiles {
                        let p = cache.join(format!("{name}__{}_t{tile}_{}.json", t.model, keys[k]));
                        let r = cached(&p, || {
                            ride_row(&cfg.models[k], &models[k], &d.id, &name, &img, tile)
                        })?;
                        tile_rows.push(r);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    write_csv(&opts.out.join("images.csv"), &rows)?;
    let summary = summarize(&cfg, &rows);
    write_csv(&opts.out.join("summary.csv"), &summary)?;
    crate::io::files::write_atomic(
        &opts.out.join("summary.md"),
        summary_markdown(&cfg, &summary).as_bytes(),
    )?;
    for d in &cfg.datasets {
        plot_dataset(d, &cfg, &rows, &opts.out)?;
    }
    if let Some(t) = &cfg.tile_study {
        write_csv(&opts.out.join("tiles.csv"), &tile_rows)?;
        plot_tiles(t, &tile_rows, &opts.out)?;
        let mut md = summary_markdown(&cfg, &summary);
        md.push_str(&tiles_markdown(t, &tile_rows));
        crate::io::files::write_atomic(&opts.out.join("summary.md"), md.as_bytes())?;
    }
    crate::harness::reproduce::provenance(
        &cfg.name,
        if opts.limit.is_some() {
            "limited"
        } else {
            "full"
        },
        &opts.config,
        vec![],
        // the coding time behind the results (cached rows included), not this call's
        rows.iter()
            .chain(tile_rows.iter().filter(|r| r.tile != Some(cfg.tile)))
            .map(|r| r.encode_s + r.decode_s)
            .sum(),
        &opts.out,
    )?;
    Ok(summary)
}

fn summarize(cfg: &CompareConfig, rows: &[CodecRow]) -> Vec<SummaryRow> {
    let mut out = vec![];
    let codecs = codecs(cfg);
    for d in &cfg.datasets {
        let of = |c: &str| -> Vec<&CodecRow> {
            rows.iter()
                .filter(|r| r.dataset == d.id && r.codec == c)
                .collect()
        };
        let jxl = of("jxl");
        for (id, label) in &codecs {
            let rs = of(id);
            if rs.is_empty() {
                continue;
            }
            let bpp: Vec<f64> = rs.iter().map(|r| r.bits_per_px).collect();
            let (m, sem) = mean_sem(&bpp);
            let paired: Vec<f64> = rs
                .iter()
                .filter_map(|r| {
                    let j = jxl.iter().find(|j| j.image == r.image)?;
                    Some(r.bits_per_px - j.bits_per_px)
                })
                .collect();
            let (dj, dj_sem) = if paired.len() == rs.len() && id != "jxl" {
                let (a, b) = mean_sem(&paired);
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            let px: f64 = rs.iter().map(|r| (r.h * r.w) as f64).sum();
            out.push(SummaryRow {
                dataset: d.id.clone(),
                codec: id.clone(),
                label: label.clone(),
                images: rs.len(),
                bits_per_px: m,
                sem,
                minus_jxl: dj,
                minus_jxl_sem: dj_sem,
                encode_px_per_s: px / rs.iter().map(|r| r.encode_s).sum::<f64>(),
                decode_px_per_s: px / rs.iter().map(|r| r.decode_s).sum::<f64>(),
            });
        }
    }
    out
}

fn summary_markdown(cfg: &CompareConfig, s: &[SummaryRow]) -> String {
    let mut t = String::from(
        "| data set | codec | images | bit/px | − JPEG XL (paired) | encode px/s | decode px/s |\n|---|---|---|---|---|---|---|\n",
    );
    for r in s {
        let label = cfg
            .datasets
            .iter()
            .find(|d| d.id == r.dataset)
            .map_or(r.dataset.as_str(), |d| d.label.as_str());
        let dj = match (r.minus_jxl, r.minus_jxl_sem) {
            (Some(a), Some(b)) => format!("{a:+.4} ± {b:.4}"),
            _ => "–".into(),
        };
        t.push_str(&format!(
            "| {label} | {} | {} | {:.4} ± {:.4} | {dj} | {:.0} | {:.0} |\n",
            r.label, r.images, r.bits_per_px, r.sem, r.encode_px_per_s, r.decode_px_per_s
        ));
    }
    t
}

/// The tile study as a table: mean bit/px ± SEM over its images per tile size, and the paired
/// difference to the codec's default tile.
fn tiles_markdown(t: &TileStudy, rows: &[CodecRow]) -> String {
    let mut md = format!(
        "\nThe cost of tiles: {} on the first {} images of {} (0: the whole image as one tile).\n\n| tile | bit/px | − tile 64 (paired) |\n|---|---|---|\n",
        t.model, t.images, t.dataset
    );
    let of =
        |tile: usize| -> Vec<&CodecRow> { rows.iter().filter(|r| r.tile == Some(tile)).collect() };
    let base = of(64);
    for &tile in &t.tiles {
        let rs = of(tile);
        if rs.is_empty() {
            continue;
        }
        let (m, sem) = mean_sem(&rs.iter().map(|r| r.bits_per_px).collect::<Vec<_>>());
        let d: Vec<f64> = rs
            .iter()
            .filter_map(|r| {
                let b = base.iter().find(|b| b.image == r.image)?;
                Some(r.bits_per_px - b.bits_per_px)
            })
            .collect();
        let paired = match (tile, d.len() == rs.len()) {
            (64, _) | (_, false) => "–".to_string(),
            _ => {
                let (a, b) = mean_sem(&d);
                format!("{a:+.4} ± {b:.4}")
            }
        };
        md.push_str(&format!("| {tile} | {m:.4} ± {sem:.4} | {paired} |\n"));
    }
    md
}

/// Every image's bit/px per codec, images sorted by JPEG XL's (or the first codec's).
fn plot_dataset(d: &DatasetSpec, cfg: &CompareConfig, rows: &[CodecRow], out: &Path) -> Result<()> {
    let rs: Vec<&CodecRow> = rows.iter().filter(|r| r.dataset == d.id).collect();
    if rs.is_empty() {
        return Ok(());
    }
    let key = if rs.iter().any(|r| r.codec == "jxl") {
        "jxl"
    } else {
        rs[0].codec.as_str()
    };
    let mut order: Vec<(&str, f64)> = rs
        .iter()
        .filter(|r| r.codec == key)
        .map(|r| (r.image.as_str(), r.bits_per_px))
        .collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut series = vec![];
    let ids = codecs(cfg);
    for (id, label) in ids {
        let mut s = Series {
            label,
            ..Default::default()
        };
        for (k, (img, _)) in order.iter().enumerate() {
            if let Some(r) = rs.iter().find(|r| r.codec == id && r.image == *img) {
                s.x.push((k + 1) as f64);
                s.y.push(r.bits_per_px);
            }
        }
        if !s.x.is_empty() {
            series.push(s);
        }
    }
    line_plot(
        &LinePlot {
            title: format!("Lossless coding of {}: bit/px per image", d.label),
            x_label: format!("image (sorted by {key}'s bit/px)"),
            y_label: "bit/px (lower is better)".into(),
            series,
            log_x: false,
            points: false,
        },
        &out.join(&d.id),
    )
}

fn plot_tiles(t: &TileStudy, rows: &[CodecRow], out: &Path) -> Result<()> {
    let mut s = Series {
        label: format!("{}, first {} images of {}", t.model, t.images, t.dataset),
        err: Some(vec![]),
        ..Default::default()
    };
    let mut sizes: Vec<usize> = t.tiles.iter().copied().filter(|&x| x > 0).collect();
    sizes.sort();
    for tile in sizes {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.tile == Some(tile))
            .map(|r| r.bits_per_px)
            .collect();
        if v.is_empty() {
            continue;
        }
        let (m, sem) = mean_sem(&v);
        s.x.push(tile as f64);
        s.y.push(m);
        if let Some(e) = s.err.as_mut() {
            e.push(sem);
        }
    }
    if s.x.is_empty() {
        return Ok(());
    }
    line_plot(
        &LinePlot {
            title: "RIDE codec: the cost of tiles".into(),
            x_label: "tile size (px; every tile restarts the SLSTM and pads its right side)".into(),
            y_label: "bit/px (lower is better)".into(),
            series: vec![s],
            log_x: true,
            points: true,
        },
        &out.join("tiles"),
    )
}
