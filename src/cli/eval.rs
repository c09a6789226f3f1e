//! `ride eval`: score images with a model (bits per pixel, or EoRIDE with `--ensemble`).

use anyhow::{Context, Result};
use ride::io::images::{expand_inputs, GrayMode};
use ride::limits;
use ride::tasks::eval::{tile_bits, tiles, Score};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `ride eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Model file: our .safetensors, or the original code's .npz export.
    #[arg(long)]
    pub model: PathBuf,
    /// Images or directories of images (JPEG/PNG/GIF). Default: DATA_DIR/bsds300/gray/test.
    pub inputs: Vec<PathBuf>,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Grayscale conversion for colour images (pil = PIL convert("L")).
    #[arg(long, default_value = "pil")]
    pub gray: GrayMode,
    /// Divide pixel values (0…255) by this (default: the model's own preprocessing, 255);
    /// must be finite and > 0.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Tile size in pixels.
    #[arg(long, default_value_t = 64)]
    pub tile: usize,
    /// Tiles per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// EoRIDE (docs/MODEL.md §6): per tile, log-mean-exp of the likelihood over the 8 flips and
    /// transposes, scoring only the pixels predicted under all of them (64×64, nb_size 5:
    /// 60×60 per tile); also reports the single model over the same pixels. Square tiles.
    #[arg(long)]
    pub ensemble: bool,
    /// Also the discrete code length of the 8-bit values (bit/px, lower is better): each value's
    /// probability is the density integrated over its quantisation bin (`tasks::discrete`),
    /// what a coder reaches.
    #[arg(long, conflicts_with = "ensemble")]
    pub discrete: bool,
}

/// `ride eval`.
pub fn eval(args: EvalArgs, data_dir: &Path) -> Result<()> {
    let EvalArgs {
        model,
        inputs,
        json,
        gray,
        scale,
        tile,
        batch,
        ensemble,
        discrete,
    } = args;
    let m = ride::io::modelfile::load(&model)
        .with_context(|| format!("loading model {}", model.display()))?;
    let inputs = if inputs.is_empty() {
        let default = data_dir.join("bsds300/gray/test");
        if !default.is_dir() {
            anyhow::bail!(
                "no images given and {} does not exist: run `make data` or pass --data-dir / RIDE_DATA_DIR",
                default.display()
            );
        }
        vec![default]
    } else {
        inputs
    };
    let files = expand_inputs(&inputs)?;
    if let Some(s) = scale {
        limits::check_positive("--scale", s)?;
        if !(1e-6..=1e9).contains(&s) {
            anyhow::bail!("--scale = {s}: outside 1e-6 … 1e9, no image scale is that far from 255");
        }
    }
    limits::check("--tile", tile, 1, limits::MAX_IMAGE_SIDE)?;
    limits::check("--batch", batch, 1, limits::MAX_BATCH)?;
    let mut prep = m.preprocessing.clone();
    prep.gray = gray.name().to_string();
    let t0 = Instant::now();
    let mut per_tile = vec![];
    let mut code_lengths = vec![];
    let mut pixels = 0;
    let grid = m.nb.grid(tile, tile).with_context(|| {
        format!(
            "--tile {tile} is smaller than the model's {}×{} neighbourhood",
            m.nb.rows, m.nb.cols
        )
    })?;
    if ensemble {
        return eval_ensemble(&m, &model, &files, &prep, scale, tile, batch, json);
    }
    for f in &files {
        let img = prep.load_image(f, scale)?;
        m.check_input_range(&img.data, &f.display().to_string())?;
        let ts = tiles(&img.data, img.h, img.w, tile);
        if ts.is_empty() {
            anyhow::bail!(
                "{}: the {}×{} image holds no complete {tile}×{tile} tile (use a smaller --tile)",
                f.display(),
                img.w,
                img.h
            );
        }
        let bits =
            tile_bits(&m, &ts, tile, batch).with_context(|| format!("scoring {}", f.display()))?;
        if bits.iter().any(|b| !b.is_finite()) {
            anyhow::bail!(
                "{}: the model gives a non-finite log-likelihood; no score is reported",
                f.display()
            );
        }
        if discrete {
            code_lengths.extend(
                ride::tasks::discrete::tile_code_lengths(&m, &ts, tile)
                    .with_context(|| format!("discrete code length of {}", f.display()))?,
            );
        }
        pixels += bits.len() * grid.0 * grid.1;
        if !json {
            let mean = bits.iter().sum::<f64>() / bits.len().max(1) as f64;
            eprintln!("{}: {:.4} bit/px ({} tiles)", img.name, mean, bits.len());
        }
        per_tile.extend(bits);
    }
    let secs = t0.elapsed().as_secs_f64();
    let s = Score::checked(&per_tile, pixels)?;
    println!(
        "{:.4} ± {:.4} bit/px (log-likelihood rate, higher is better) over {} tiles of {tile}×{tile} from {} images; {} pixels in {:.1} s ({:.0} px/s)",
        s.bits_per_px, s.sem, s.tiles, files.len(), s.pixels, secs, s.pixels as f64 / secs
    );
    let d = if discrete {
        let d = Score::checked(&code_lengths, pixels)?;
        println!(
            "{:.4} ± {:.4} bit/px discrete code length of the 8-bit values (lower is better; each value's probability is the density over its quantisation bin, floor {:e})",
            d.bits_per_px,
            d.sem,
            ride::tasks::discrete::FLOOR
        );
        Some(d)
    } else {
        None
    };
    if json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(d) = &d {
            v["discrete_bits_per_px"] = d.bits_per_px.into();
            v["discrete_sem"] = d.sem.into();
        }
        v["images"] = files.len().into();
        v["seconds"] = secs.into();
        v["pixels_per_s"] = (s.pixels as f64 / secs).into();
        v["model"] = model.display().to_string().into();
        v["git_commit"] = ride::io::provenance::git_commit().into();
        println!("{v}");
    }
    Ok(())
}

/// `ride eval --ensemble`: EoRIDE and the single model over the pixels common to all 8
/// flips/transposes.
#[allow(clippy::too_many_arguments)]
fn eval_ensemble(
    m: &ride::model::ride::Ride<f32>,
    model: &std::path::Path,
    files: &[PathBuf],
    prep: &ride::io::preprocessing::Preprocessing,
    scale: Option<f64>,
    tile: usize,
    batch: usize,
    json: bool,
) -> Result<()> {
    let t0 = Instant::now();
    let (mut ens, mut single) = (vec![], vec![]);
    let mut n_common = 0;
    for f in files {
        let img = prep.load_image(f, scale)?;
        m.check_input_range(&img.data, &f.display().to_string())?;
        let ts = ride::tasks::eval::tiles(&img.data, img.h, img.w, tile);
        let r = ride::tasks::eval::ensemble_tile_bits(m, &ts, tile, batch)
            .with_context(|| format!("scoring {}", f.display()))?;
        let (e, s, n) = (r.ensemble, r.single, r.pixels_per_tile);
        if e.is_empty() {
            anyhow::bail!(
                "{}: the {}×{} image holds no complete {tile}×{tile} tile (use a smaller --tile)",
                f.display(),
                img.w,
                img.h
            );
        }
        n_common = n;
        if !json {
            let k = e.len().max(1) as f64;
            eprintln!(
                "{}: EoRIDE {:.4} bit/px, single {:.4} bit/px ({} tiles)",
                img.name,
                e.iter().sum::<f64>() / k,
                s.iter().sum::<f64>() / k,
                e.len()
            );
        }
        ens.extend(e);
        single.extend(s);
    }
    let secs = t0.elapsed().as_secs_f64();
    let pixels = ens.len() * n_common;
    let e = Score::checked(&ens, pixels)?;
    let s = Score::checked(&single, pixels)?;
    println!(
        "EoRIDE (log-mean-exp over 8 flips/transposes, {n_common} common pixels per tile): {:.4} ± {:.4} bit/px (log-likelihood rate, higher is better); single model over the same pixels {:.4} ± {:.4} bit/px; {} tiles of {tile}×{tile} from {} images; {} pixels in {:.1} s",
        e.bits_per_px, e.sem, s.bits_per_px, s.sem, e.tiles, files.len(), e.pixels, secs
    );
    if json {
        let mut v = serde_json::to_value(&e)?;
        v["ensemble"] = true.into();
        v["git_commit"] = ride::io::provenance::git_commit().into();
        v["common_pixels_per_tile"] = n_common.into();
        v["single_bits_per_px"] = s.bits_per_px.into();
        v["single_sem"] = s.sem.into();
        v["images"] = files.len().into();
        v["seconds"] = secs.into();
        v["model"] = model.display().to_string().into();
        println!("{v}");
    }
    Ok(())
}
