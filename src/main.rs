//! `ride` command-line interface: parses the arguments and dispatches to `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    Eval(cli::eval::EvalArgs),

    /// Draw an image from a model by ancestral raster-scan sampling (docs/MODEL.md §4, §7) and write it
    /// as an 8-bit PNG (values × the model's scale, rounded and clamped to 0..255).
    Sample(cli::generate::SampleArgs),

    /// Fill a square hole in an image (docs/MODEL.md §7): ancestral initialisation of the hole
    /// (CANDIDATES samples, the most likely kept), then Metropolis–Hastings sweeps over 5×5 blocks
    /// in 19×19 windows, stride 3. The target is the model's density of the evaluation crop (the
    /// hole plus 8 observed pixels per side, clipped to the image). Writes the filled image as an
    /// 8-bit PNG (values × the model's scale, rounded and clamped to 0..255).
    Inpaint(cli::generate::InpaintArgs),

    /// Measure this machine's FMA peak and every performance kernel (SLSTM layers, gate
    /// kernel, MCGSM, full training steps): cells/s, GFLOP/s and share of the peak.
    /// Writes a CSV (and provenance JSON) to OUT.
    Bench(cli::tools::BenchArgs),

    /// Train a model from an experiment config (RIDE or the MCGSM baseline), then score its
    /// test images. Writes model.safetensors, checkpoint.safetensors, train_log.csv and
    /// summary.json into OUT (default results/<experiment name>).
    Train(cli::experiments::TrainArgs),

    /// Run a hyperparameter sweep: a grid of overrides on a base experiment, one training per
    /// cell, rows appended atomically to OUT/results.csv; a rerun skips finished cells.
    Sweep(cli::experiments::SweepArgs),

    /// Run the paper's experiments (tables, ablation sweeps, textures, inpainting) at one scale
    /// from experiments/reproduce.toml, writing CSV tables, figures and REPORT.md.
    Reproduce(cli::experiments::ReproduceArgs),

    /// Fetch the data sets (BSDS300, van Hateren, Brodatz) into DATA_DIR from their official
    /// hosts or a mirror, resuming interrupted downloads and verifying every file against the
    /// SHA-256 sums built into ride; or verify what is there.
    Data(cli::tools::DataArgs),

    /// Compress an 8-bit gray image losslessly with a model: each pixel's value is range-coded
    /// with the probability the model gives it (its density over the value's quantisation bin).
    /// The file names the model by hash; decode it with the same model.
    Compress(cli::codec::CompressArgs),

    /// Decompress a file written by `ride compress` (with the same model) into an 8-bit gray
    /// PNG. A wrong model, a corrupt or truncated file is an error, never a wrong image.
    Decompress(cli::codec::DecompressArgs),

    /// Compare the RIDE codec with PNG, WebP and JPEG XL on whole data sets (experiments/codec.toml;
    /// `make codec`): bit/px ± SEM, encode/decode px/s, CSV, figures, summary.md.
    CodecCompare(cli::codec::CompareArgs),

    /// Convert a model file (e.g. the original code's npz) to our safetensors format.
    Convert(cli::tools::ConvertArgs),
}

fn main() {
    let cli = Cli::parse();
    let d = &cli.data_dir;
    let result = match cli.cmd {
        Cmd::Eval(a) => cli::eval::eval(a, d),
        Cmd::Sample(a) => cli::generate::sample(a, d),
        Cmd::Inpaint(a) => cli::generate::inpaint(a, d),
        Cmd::Bench(a) => cli::tools::bench(a),
        Cmd::Train(a) => cli::experiments::train(a, d),
        Cmd::Sweep(a) => cli::experiments::sweep(a, d),
        Cmd::Reproduce(a) => cli::experiments::reproduce(a, d),
        Cmd::Data(a) => cli::tools::data(a, d),
        Cmd::Convert(a) => cli::tools::convert(a, d),
        Cmd::Compress(a) => cli::codec::compress(a),
        Cmd::Decompress(a) => cli::codec::decompress(a),
        Cmd::CodecCompare(a) => cli::codec::compare(a, d),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
