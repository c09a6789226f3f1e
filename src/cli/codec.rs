//! `ride compress` / `ride decompress`: the lossless codec (`ride::codec`).

use anyhow::{bail, Context, Result};
use ride::codec;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `ride compress`.
#[derive(clap::Args)]
pub struct CompressArgs {
    /// Model file (.safetensors or the original code's .npz) of 8-bit gray images.
    #[arg(long)]
    pub model: PathBuf,
    /// An 8-bit gray image (PNG, or a colour image whose pixels are all gray).
    pub image: PathBuf,
    /// Output file.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Code the image in square tiles of this size, each with its own stream, in parallel
    /// (0: one tile). The SLSTM's states restart at every tile, as in the evaluation (the
    /// models were trained on small patches; over a whole image their states drift).
    #[arg(long, default_value_t = 64)]
    pub tile: usize,
    /// Threads (default: all cores). The file does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Arguments of `ride decompress`.
#[derive(clap::Args)]
pub struct DecompressArgs {
    /// The model the file was compressed with.
    #[arg(long)]
    pub model: PathBuf,
    /// A file written by `ride compress`.
    pub input: PathBuf,
    /// Output: an 8-bit gray PNG.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn in_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        b = b.num_threads(n);
    }
    Ok(b.build()?.install(f))
}

fn load_model(path: &Path) -> Result<ride::model::ride::Ride<f32>> {
    ride::io::modelfile::load(path).with_context(|| format!("loading model {}", path.display()))
}

/// `ride compress`.
pub fn compress(a: CompressArgs) -> Result<()> {
    ride::limits::check("--tile", a.tile, 0, ride::limits::MAX_IMAGE_SIDE)?;
    let model = load_model(&a.model)?;
    let img = codec::read_image(&a.image)?;
    let t0 = Instant::now();
    let c = in_pool(a.threads, || codec::compress(&model, &img, a.tile))?
        .with_context(|| format!("compressing {}", a.image.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    ride::io::files::write_atomic(&a.out, &c.bytes)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let px = (img.h * img.w) as f64;
    println!(
        "{}: {}×{} → {} ({} bytes, {:.4} bit/px{}; the model's discrete code length {:.4} bit/px, coder's ideal {:.4}); {:.0} px/s",
        a.image.display(),
        img.w,
        img.h,
        a.out.display(),
        c.bytes.len(),
        c.bytes.len() as f64 * 8.0 / px,
        if c.stored { ", stored: coding would not be smaller" } else { "" },
        c.discrete_bits / px,
        c.ideal_bits / px,
        px / secs
    );
    Ok(())
}

/// `ride decompress`.
pub fn decompress(a: DecompressArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let bytes = ride::io::files::read_bounded(
        &a.input,
        4 * ride::limits::MAX_IMAGE_PIXELS as u64,
        "compressed file",
    )?;
    let t0 = Instant::now();
    let img = in_pool(a.threads, || codec::decompress(&model, &bytes))?
        .with_context(|| format!("decompressing {}", a.input.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    codec::write_png(&a.out, &img).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{}: {}×{} → {}; {:.0} px/s",
        a.input.display(),
        img.w,
        img.h,
        a.out.display(),
        (img.h * img.w) as f64 / secs
    );
    Ok(())
}

/// Arguments of `ride codec-compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The comparison's config.
    #[arg(long, default_value = "experiments/codec.toml")]
    pub config: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "results/codec")]
    pub out: PathBuf,
    /// Only the first N images of each data set (a quick run).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `ride codec-compare`.
pub fn compare(a: CompareArgs, data_dir: &Path) -> Result<()> {
    let opts = ride::harness::codec_compare::Options {
        config: a.config,
        data_dir: data_dir.to_path_buf(),
        out: a.out,
        limit: a.limit,
    };
    ride::harness::codec_compare::run(&opts)?;
    println!(
        "{}",
        std::fs::read_to_string(opts.out.join("summary.md")).unwrap_or_default()
    );
    println!("wrote {}", opts.out.display());
    Ok(())
}
