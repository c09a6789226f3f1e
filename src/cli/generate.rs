//! `ride sample` and `ride inpaint`: images drawn from a model.

use super::{parse_center, parse_clip, parse_size};
use anyhow::{Context, Result};
use ride::io::files::write_atomic;
use ride::limits;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `ride sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// Model file: our .safetensors, or the original code's .npz export.
    #[arg(long)]
    pub model: PathBuf,
    /// Image size WIDTHxHEIGHT, e.g. 256x256.
    #[arg(long, default_value = "256x256", value_parser = parse_size)]
    pub size: (usize, usize),
    /// Random seed (same seed, same image).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG file.
    #[arg(long)]
    pub out: PathBuf,
    /// Margin in pixels on top, left and right: initialised from the training marginal,
    /// sampled as burn-in and cropped.
    #[arg(long, default_value_t = 8)]
    pub margin: usize,
    /// Clip every sampled pixel to LO,HI (model units, e.g. 0,1 for the [0,1] scale).
    #[arg(long, value_parser = parse_clip, allow_hyphen_values = true)]
    pub clip: Option<(f64, f64)>,
}

/// `ride sample`.
pub fn sample(args: SampleArgs, _data_dir: &Path) -> Result<()> {
    let SampleArgs {
        model,
        size: (w, h),
        seed,
        out,
        margin,
        clip,
    } = args;
    let m = ride::io::modelfile::load(&model)
        .with_context(|| format!("loading model {}", model.display()))?;
    // fail before the (long) sampling if the result could not be written
    m.preprocessing.encode_png(&[0.0], 1, 1)?;
    let t0 = Instant::now();
    let opts = ride::tasks::sample::SampleOptions {
        margin,
        seed,
        clip,
        ..Default::default()
    };
    let s = ride::tasks::sample::sample(&m, h, w, &opts)?;
    let secs = t0.elapsed().as_secs_f64();
    let png = m
        .preprocessing
        .encode_png(&s.image, h, w)
        .context("the sampled image")?;
    write_atomic(&out, &png)?;
    let n = s.image.len() as f64;
    let mean = s.image.iter().sum::<f64>() / n;
    let (lo, hi) = s
        .image
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    println!(
        "wrote {} ({w}×{h}, seed {seed}, margin {margin}) in {secs:.1} s; mean sampled value {mean:.4} (model units; min {lo:.3}, max {hi:.3})",
        out.display()
    );
    Ok(())
}

/// Arguments of `ride inpaint`.
#[derive(clap::Args)]
pub struct InpaintArgs {
    /// Model file: our .safetensors, or the original code's .npz export.
    #[arg(long)]
    pub model: PathBuf,
    /// Image (grayscale; colour converted with PIL's luma), divided by the model's scale.
    #[arg(long)]
    pub image: PathBuf,
    /// Hole side in pixels.
    #[arg(long, default_value_t = 71)]
    pub hole: usize,
    /// Hole centre ROW,COL (default: the image centre).
    #[arg(long, value_parser = parse_center)]
    pub center: Option<(usize, usize)>,
    /// Metropolis–Hastings sweeps.
    #[arg(long, default_value_t = 10)]
    pub sweeps: usize,
    /// Random seed (same seed, same image).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Ancestral initialisations of the hole; the most likely is kept.
    #[arg(long, default_value_t = 5)]
    pub candidates: usize,
    /// Observed pixels per side of the hole in the evaluation crop.
    #[arg(long, default_value_t = 8)]
    pub context: usize,
    /// The MH target: crop (the model's density of the whole evaluation crop, exact) or window
    /// (the original code's approximation: the density of each move's 19×19 window, much
    /// cheaper).
    #[arg(long, default_value = "crop", value_parser = ["crop", "window"])]
    pub target: String,
    /// Output PNG file.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ride inpaint`.
pub fn inpaint(args: InpaintArgs, _data_dir: &Path) -> Result<()> {
    let InpaintArgs {
        model,
        image,
        hole,
        center,
        sweeps,
        seed,
        candidates,
        context,
        target,
        out,
        json,
    } = args;
    let target = match target.as_str() {
        "window" => ride::tasks::inpaint::Target::Window,
        _ => ride::tasks::inpaint::Target::Crop,
    };
    let m = ride::io::modelfile::load(&model)
        .with_context(|| format!("loading model {}", model.display()))?;
    limits::check("--candidates", candidates, 1, limits::MAX_CANDIDATES)?;
    limits::check("--sweeps", sweeps, 0, limits::MAX_SWEEPS)?;
    let img = m.preprocessing.load_image(&image, None)?;
    m.check_input_range(&img.data, &image.display().to_string())?;
    let data = img.data.clone();
    let opts = ride::tasks::inpaint::InpaintOptions {
        hole: (hole, hole),
        center,
        context,
        sweeps,
        seed,
        candidates,
        target,
        progress: Some("inpaint".into()),
        ..Default::default()
    };
    let t0 = Instant::now();
    let r = ride::tasks::inpaint::inpaint(&m, &data, img.h, img.w, &opts)?;
    let secs = t0.elapsed().as_secs_f64();
    let g = r.geometry;
    let score = ride::tasks::inpaint::score_fill(&m, &r.image, &data, &g)?;
    let mean = ride::tasks::inpaint::mean_fill(&data, &g, context);
    let mean_score = ride::tasks::inpaint::score_fill(&m, &mean, &data, &g)?;
    if !score.hole_bits_per_px.is_finite() {
        anyhow::bail!("the filled hole has a non-finite log-likelihood under the model");
    }
    // scored first: nothing is written for a fill that cannot be scored
    let png = m
        .preprocessing
        .encode_png(&r.image, img.h, img.w)
        .context("the inpainted image")?;
    write_atomic(&out, &png)?;
    let per_sweep = r.sweep_seconds.iter().sum::<f64>() / r.sweep_seconds.len().max(1) as f64;
    let chain = match r.acceptance.last() {
        Some(a) => {
            format!("{sweeps} sweeps, {per_sweep:.2} s/sweep, acceptance {a:.3} in the last sweep")
        }
        None => "no MH sweeps: the best ancestral candidate".to_string(),
    };
    let db = |v: f64| {
        if v.is_finite() {
            format!("{v:.2} dB")
        } else {
            "exact (∞ dB)".to_string()
        }
    };
    println!(
        "wrote {} ({}×{} hole at rows {}..{}, cols {}..{}; {chain}) in {secs:.1} s; filled hole {:.4} bit/px (per-pixel model log-likelihood rate, higher is better), PSNR {} (mean fill {})",
        out.display(),
        g.hole.h,
        g.hole.w,
        g.hole.top,
        g.hole.bottom_excl(),
        g.hole.left,
        g.hole.right_excl(),
        score.hole_bits_per_px,
        db(score.psnr_db),
        db(mean_score.psnr_db)
    );
    if json {
        let v = serde_json::json!({
            "model": model.display().to_string(),
            "image": image.display().to_string(),
            "image_size": [img.h, img.w],
            "hole": g.hole,
            "crop": g.crop,
            "sweeps": sweeps,
            "target": target.name(),
            "seed": seed,
            "candidates": candidates,
            "candidate_logliks_nats": r.candidate_logliks,
            "chosen_candidate": r.chosen,
            "acceptance": r.acceptance,
            "hole_bits_per_px": score.hole_bits_per_px,
            "crop_bits_per_px": score.crop_bits_per_px,
            "psnr_db": score.psnr_db,
            "mean_fill": mean_score,
            "init_seconds": r.init_seconds,
            "seconds_per_sweep": per_sweep,
            "seconds": secs,
            "git_commit": ride::io::provenance::git_commit(),
        });
        println!("{v}");
    }
    Ok(())
}
