//! `ride` command-line interface.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ride::eval::{tile_bits, tiles, Score};
use ride::images::{expand_inputs, load_gray, GrayMode};
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
        /// Divide pixel values by this (default: the model's own preprocessing, 255).
        #[arg(long)]
        scale: Option<f64>,
        /// Tile size in pixels.
        #[arg(long, default_value_t = 64)]
        tile: usize,
        /// Tiles per batch.
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Measure this machine's FMA peak and every performance kernel (SLSTM layers, gate
    /// kernel, MCGSM, full training steps): cells/s, GFLOP/s and share of the peak.
    /// Writes a CSV (and provenance JSON) to OUT.
    Bench {
        /// Report each kernel's share of the measured FMA peak (always on; accepted for clarity).
        #[arg(long)]
        roofline: bool,
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
    },
    /// Convert a model file (e.g. the original code's npz) to our safetensors format.
    Convert {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
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
        } => {
            let m = ride::modelfile::load(&model)
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
            let scale = scale.unwrap_or(m.preprocessing.scale);
            let t0 = Instant::now();
            let mut per_tile = vec![];
            let mut pixels = 0;
            let grid =
                m.nb.grid(tile, tile)
                    .with_context(|| format!("tile {tile} is smaller than the neighbourhood"))?;
            for f in &files {
                let img = load_gray(f, gray)?;
                let data: Vec<f64> = img.data.iter().map(|v| v / scale).collect();
                let ts = tiles(&data, img.h, img.w, tile);
                let bits = tile_bits(&m, &ts, tile, batch)
                    .with_context(|| format!("scoring {}", f.display()))?;
                pixels += bits.len() * grid.0 * grid.1;
                if !json {
                    let mean = bits.iter().sum::<f64>() / bits.len().max(1) as f64;
                    eprintln!("{}: {:.4} bit/px ({} tiles)", img.name, mean, bits.len());
                }
                per_tile.extend(bits);
            }
            let secs = t0.elapsed().as_secs_f64();
            let s = Score::from_tiles(&per_tile, pixels);
            println!(
                "{:.4} ± {:.4} bit/px (log-likelihood rate, higher is better) over {} tiles of {tile}×{tile} from {} images; {} pixels in {:.1} s",
                s.bits_per_px, s.sem, s.tiles, files.len(), s.pixels, secs
            );
            if json {
                let mut v = serde_json::to_value(&s)?;
                v["images"] = files.len().into();
                v["seconds"] = secs.into();
                v["model"] = model.display().to_string().into();
                println!("{v}");
            }
            Ok(())
        }
        Cmd::Bench {
            roofline: _,
            threads,
            json,
            filter,
            min_time,
            out,
        } => ride::roofline::run(&ride::roofline::Options {
            threads,
            json,
            filter,
            min_time,
            out,
        }),
        Cmd::Convert { model, out } => {
            let m = ride::modelfile::load(&model)?;
            ride::modelfile::save_safetensors(&m, &out)?;
            println!("wrote {} ({} parameters)", out.display(), m.num_params());
            Ok(())
        }
    }
}
