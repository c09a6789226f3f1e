//! `ride` command-line interface.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ride::io::images::{expand_inputs, GrayMode};
use ride::io::modelfile::write_atomic;
use ride::limits;
use ride::tasks::eval::{tile_bits, tiles, Score};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "ride",
    version,
    about = "RIDE: recurrent image density estimator (spatial LSTM + MCGSM)"
)]
struct Cli {
    /// Data directory (BSDS300, van Hateren, Brodatz); `make data` fills ./data.
    #[arg(long, global = true, env = "RIDE_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Score images with a model.
    ///
    /// Prints the log-likelihood rate in bits per pixel — mean per-pixel log-likelihood over
    /// non-overlapping tiles divided by ln 2, positive, HIGHER IS BETTER (as in the paper's
    /// tables) — with its standard error over tiles and the tile count.
    Eval {
        /// Model file: our .safetensors, or the original code's .npz export.
        #[arg(long)]
        model: PathBuf,
        /// Images or directories of images (JPEG/PNG/GIF). Default: DATA_DIR/bsds300/gray/test.
        inputs: Vec<PathBuf>,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Grayscale conversion for colour images (pil = PIL convert("L")).
        #[arg(long, default_value = "pil")]
        gray: GrayMode,
        /// Divide pixel values (0…255) by this (default: the model's own preprocessing, 255);
        /// must be finite and > 0.
        #[arg(long)]
        scale: Option<f64>,
        /// Tile size in pixels.
        #[arg(long, default_value_t = 64)]
        tile: usize,
        /// Tiles per batch.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// EoRIDE (docs/MODEL.md §6): per tile, log-mean-exp of the likelihood over the 8 flips and
        /// transposes, scoring only the pixels predicted under all of them (64×64, nb_size 5:
        /// 60×60 per tile); also reports the single model over the same pixels. Square tiles.
        #[arg(long)]
        ensemble: bool,
    },
    /// Draw an image from a model by ancestral raster-scan sampling (docs/MODEL.md §4, §7) and write it
    /// as an 8-bit PNG (values × the model's scale, rounded and clamped to 0..255).
    Sample {
        /// Model file: our .safetensors, or the original code's .npz export.
        #[arg(long)]
        model: PathBuf,
        /// Image size WIDTHxHEIGHT, e.g. 256x256.
        #[arg(long, default_value = "256x256", value_parser = parse_size)]
        size: (usize, usize),
        /// Random seed (same seed, same image).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
        /// Margin in pixels on top, left and right: initialised from the training marginal,
        /// sampled as burn-in and cropped.
        #[arg(long, default_value_t = 8)]
        margin: usize,
        /// Clip every sampled pixel to LO,HI (model units, e.g. 0,1 for the [0,1] scale).
        #[arg(long, value_parser = parse_clip, allow_hyphen_values = true)]
        clip: Option<(f64, f64)>,
    },
    /// Fill a square hole in an image (docs/MODEL.md §7): ancestral initialisation of the hole
    /// (CANDIDATES samples, the most likely kept), then Metropolis–Hastings sweeps over 5×5 blocks
    /// in 19×19 windows, stride 3. The target is the model's density of the evaluation crop (the
    /// hole plus 8 observed pixels per side, clipped to the image). Writes the filled image as an
    /// 8-bit PNG (values × the model's scale, rounded and clamped to 0..255).
    Inpaint {
        /// Model file: our .safetensors, or the original code's .npz export.
        #[arg(long)]
        model: PathBuf,
        /// Image (grayscale; colour converted with PIL's luma), divided by the model's scale.
        #[arg(long)]
        image: PathBuf,
        /// Hole side in pixels.
        #[arg(long, default_value_t = 71)]
        hole: usize,
        /// Hole centre ROW,COL (default: the image centre).
        #[arg(long, value_parser = parse_center)]
        center: Option<(usize, usize)>,
        /// Metropolis–Hastings sweeps.
        #[arg(long, default_value_t = 10)]
        sweeps: usize,
        /// Random seed (same seed, same image).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Ancestral initialisations of the hole; the most likely is kept.
        #[arg(long, default_value_t = 5)]
        candidates: usize,
        /// Observed pixels per side of the hole in the evaluation crop.
        #[arg(long, default_value_t = 8)]
        context: usize,
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Measure this machine's FMA peak and every performance kernel (SLSTM layers, gate
    /// kernel, MCGSM, full training steps): cells/s, GFLOP/s and share of the peak.
    /// Writes a CSV (and provenance JSON) to OUT.
    Bench {
        /// Thread counts to measure, e.g. `--threads 1,2` (default: all cores).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// One JSON object per line on stdout.
        #[arg(long)]
        json: bool,
        /// Only kernels whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Minimum measuring time per kernel in seconds.
        #[arg(long, default_value_t = 1.0)]
        min_time: f64,
        /// Output folder for roofline.csv and roofline.json.
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
        /// Instead of measuring, collect criterion's results from this folder (e.g.
        /// target/criterion) into OUT/criterion.csv.
        #[arg(long)]
        harvest: Option<PathBuf>,
    },
    /// Train a model from an experiment config (RIDE or the MCGSM baseline), then score its
    /// test images. Writes model.safetensors, checkpoint.safetensors, train_log.csv and
    /// summary.json into OUT (default results/<experiment name>).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Continue from OUT/checkpoint.safetensors (same config required).
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the summary as one JSON object on the last line of stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run a hyperparameter sweep: a grid of overrides on a base experiment, one training per
    /// cell, rows appended atomically to OUT/results.csv; a rerun skips finished cells.
    Sweep {
        #[arg(long)]
        config: PathBuf,
        /// Cells trained at the same time.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Output folder (default results/<sweep name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only this cell (0-based; used by the Slurm array job).
        #[arg(long)]
        cell: Option<usize>,
        /// Only rebuild OUT/results.csv from the finished cells.
        #[arg(long)]
        merge: bool,
        /// Write a Slurm array job script (one task per cell) and a merge step into DIR.
        #[arg(long)]
        emit_slurm: Option<PathBuf>,
    },
    /// Run the paper's experiments (tables, ablation sweeps, textures, inpainting) at one scale
    /// from experiments/reproduce.toml, writing CSV tables, figures and REPORT.md.
    Reproduce {
        /// quick (minutes, smoke test), standard (this machine, hours) or paper (original sizes).
        #[arg(long, default_value = "standard")]
        scale: String,
        /// Folder of the experiment configs.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Results root (default: results for standard, results/<scale> otherwise).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only these experiments (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Sweep cells trained at the same time.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Only rewrite REPORT.md from the existing results.
        #[arg(long)]
        report_only: bool,
    },
    /// Fetch the data sets (BSDS300, van Hateren, Brodatz) into DATA_DIR from their official
    /// hosts or a mirror, resuming interrupted downloads and verifying every file against the
    /// SHA-256 sums built into ride; or verify what is there.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Convert a model file (e.g. the original code's npz) to our safetensors format.
    Convert {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The data domain to record (bsds300, deadleaves, brodatz, gray8, vanhateren,
        /// bsds300_patches): needed for files that do not record one (format-1 files); the
        /// original code's npz defaults to bsds300.
        #[arg(long)]
        domain: Option<ride::io::preprocessing::Domain>,
    },
}

#[derive(Subcommand)]
enum DataAction {
    /// Download what is missing and verify it.
    Fetch {
        /// Mirror base URLs tried before the official hosts, laid out like DATA_DIR
        /// (MIRROR/bsds300/images/test/3096.jpg); comma-separated in RIDE_DATA_MIRROR.
        #[arg(long, env = "RIDE_DATA_MIRROR", value_delimiter = ',')]
        mirror: Vec<String>,
        /// Only these data sets (bsds300, vanhateren, brodatz); default all.
        #[arg(long)]
        only: Vec<String>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Check every file of the data sets against its SHA-256 sum.
    Verify {
        #[arg(long)]
        only: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Eval {
            model,
            inputs,
            json,
            gray,
            scale,
            tile,
            batch,
            ensemble,
        } => {
            let m = ride::io::modelfile::load(&model)
                .with_context(|| format!("loading model {}", model.display()))?;
            let inputs = if inputs.is_empty() {
                let default = cli.data_dir.join("bsds300/gray/test");
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
                    anyhow::bail!(
                        "--scale = {s}: outside 1e-6 … 1e9, no image scale is that far from 255"
                    );
                }
            }
            limits::check("--tile", tile, 1, limits::MAX_IMAGE_SIDE)?;
            limits::check("--batch", batch, 1, limits::MAX_BATCH)?;
            let mut prep = m.preprocessing.clone();
            prep.gray = gray.name().to_string();
            let t0 = Instant::now();
            let mut per_tile = vec![];
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
                let bits = tile_bits(&m, &ts, tile, batch)
                    .with_context(|| format!("scoring {}", f.display()))?;
                if bits.iter().any(|b| !b.is_finite()) {
                    anyhow::bail!(
                        "{}: the model gives a non-finite log-likelihood; no score is reported",
                        f.display()
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
            if json {
                let mut v = serde_json::to_value(&s)?;
                v["images"] = files.len().into();
                v["seconds"] = secs.into();
                v["pixels_per_s"] = (s.pixels as f64 / secs).into();
                v["model"] = model.display().to_string().into();
                v["git_commit"] = ride::io::provenance::git_commit().into();
                println!("{v}");
            }
            Ok(())
        }
        Cmd::Bench {
            harvest: Some(dir),
            out,
            ..
        } => {
            let csv = out.join("criterion.csv");
            let rows = ride::bench::criterion_harvest::harvest(&dir, &csv)?;
            println!("{} criterion results → {}", rows.len(), csv.display());
            Ok(())
        }
        Cmd::Bench {
            threads,
            json,
            filter,
            min_time,
            out,
            harvest: None,
        } => ride::bench::roofline::run(&ride::bench::roofline::Options {
            threads,
            json,
            filter,
            min_time,
            out,
        }),
        Cmd::Sample {
            model,
            size: (w, h),
            seed,
            out,
            margin,
            clip,
        } => {
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
        Cmd::Inpaint {
            model,
            image,
            hole,
            center,
            sweeps,
            seed,
            candidates,
            context,
            out,
            json,
        } => {
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
            let per_sweep =
                r.sweep_seconds.iter().sum::<f64>() / r.sweep_seconds.len().max(1) as f64;
            let chain = match r.acceptance.last() {
                Some(a) => format!(
                    "{sweeps} sweeps, {per_sweep:.2} s/sweep, acceptance {a:.3} in the last sweep"
                ),
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
        Cmd::Train {
            config,
            resume,
            out,
            json,
        } => {
            let cfg = ride::train::config::Experiment::load(&config)?;
            let out = out.unwrap_or_else(|| ride::train::default_out(&cfg));
            let o = ride::train::train(&cfg, &cli.data_dir, &out, resume)?;
            println!(
                "{}: {} test {:.4} ± {:.4} bit/px ({} tiles), {} parameters, trained in {:.1} s; model {}",
                o.experiment, o.model_kind, o.test.bits_per_px, o.test.sem, o.test.tiles, o.parameters, o.train_seconds, o.model_file
            );
            if json {
                println!("{}", serde_json::to_string(&o)?);
            }
            Ok(())
        }
        Cmd::Reproduce {
            scale,
            experiments,
            out,
            only,
            workers,
            report_only,
        } => {
            let out = out.unwrap_or_else(|| ride::harness::reproduce::default_out(&scale));
            let opts = ride::harness::reproduce::Options {
                experiments,
                data_dir: cli.data_dir.clone(),
                out,
                scale,
                only,
                workers,
            };
            if report_only {
                ride::harness::reproduce::report_only(&opts)
            } else {
                ride::harness::reproduce::run(&opts)
            }
        }
        Cmd::Sweep {
            config,
            workers,
            out,
            cell,
            merge,
            emit_slurm,
        } => {
            let (sweep, base) = ride::harness::sweep::SweepConfig::load(&config)?;
            let cells = sweep.cells(&base)?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&sweep.name));
            if let Some(dir) = emit_slurm {
                ride::harness::sweep::emit_slurm(&config, cells.len(), &cli.data_dir, &out, &dir)?;
                println!(
                    "wrote {}/sweep.sbatch, merge.sbatch and submit.sh ({} cells)",
                    dir.display(),
                    cells.len()
                );
                return Ok(());
            }
            let rows = if merge {
                ride::harness::sweep::merge(&out)?
            } else if let Some(k) = cell {
                let c = cells
                    .get(k)
                    .with_context(|| format!("--cell {k}: the sweep has {} cells", cells.len()))?;
                vec![ride::harness::sweep::run_cell(c, &cli.data_dir, &out)?]
            } else {
                ride::harness::sweep::run(&cells, &cli.data_dir, &out, workers)?
            };
            println!(
                "{} of {} cells finished; {}",
                rows.len(),
                cells.len(),
                out.join("results.csv").display()
            );
            Ok(())
        }
        Cmd::Data { action } => data(&cli.data_dir, action),
        Cmd::Convert { model, out, domain } => {
            if out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
                anyhow::bail!(
                    "--out {}: convert writes our safetensors format; name the file *.safetensors",
                    out.display()
                );
            }
            let m = ride::io::modelfile::load_as(&model, domain)?;
            ride::io::modelfile::save_safetensors(&m, &out)?;
            println!("wrote {} ({} parameters)", out.display(), m.num_params());
            Ok(())
        }
    }
}

/// `ride data fetch|verify`.
fn data(data_dir: &std::path::Path, action: DataAction) -> Result<()> {
    use ride::data::fetch::{official, verify_all};
    let names = |only: &[String]| -> Vec<String> {
        if only.is_empty() {
            official::NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            only.to_vec()
        }
    };
    match action {
        DataAction::Fetch {
            mirror,
            only,
            quiet,
        } => {
            for name in names(&only) {
                let ds = official::dataset(&name, &mirror)?;
                let t0 = Instant::now();
                let r = ride::data::fetch::fetch(&ds, data_dir, quiet)?;
                println!(
                    "{name}: {} files verified ({} already there, {} fetched, {} derived) in {:.1} s → {}",
                    r.already_present + r.fetched + r.derived,
                    r.already_present,
                    r.fetched,
                    r.derived,
                    t0.elapsed().as_secs_f64(),
                    data_dir.join(&name).display()
                );
                if let Some((p, why)) = r.unavailable.first() {
                    println!(
                        "{name}: {} files not fetched ({why}), e.g. {p}",
                        r.unavailable.len()
                    );
                }
            }
            Ok(())
        }
        DataAction::Verify { only } => {
            let mut all_ok = true;
            for name in names(&only) {
                let ds = official::dataset(&name, &[])?;
                let (ok, bad) = verify_all(&ds, data_dir)?;
                println!("{name}: {ok} of {} files verified", ds.files.len());
                for p in bad.iter().take(10) {
                    println!("  missing or altered: {}", p.display());
                }
                all_ok &= bad.is_empty();
            }
            if !all_ok {
                anyhow::bail!("some files are missing or do not match their SHA-256 sums");
            }
            Ok(())
        }
    }
}

/// `WIDTHxHEIGHT` (also `×` or `X`), both positive.
fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!("invalid size '{s}': expected WIDTHxHEIGHT with positive integers, e.g. 256x256")
    };
    let (a, b) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: usize = a.trim().parse().map_err(|_| bad())?;
    let h: usize = b.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok((w, h))
}

/// `ROW,COL` (non-negative integers).
fn parse_center(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!("invalid centre '{s}': expected ROW,COL with non-negative integers, e.g. 160,240")
    };
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

/// `LO,HI` with LO ≤ HI.
fn parse_clip(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("invalid clip range '{s}': expected LO,HI with numbers LO ≤ HI, e.g. 0,1");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let lo: f64 = a.trim().parse().map_err(|_| bad())?;
    let hi: f64 = b.trim().parse().map_err(|_| bad())?;
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
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
