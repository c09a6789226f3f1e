//! Upper bounds on every size a user controls (CLI flags, config fields, model-file dimensions).
//!
//! Each bound is far above anything the paper uses and low enough that the allocation it implies
//! fits in memory, so an absurd value is a clear error before any work, never an allocation
//! abort or an hours-long run. Checked with [`check`], which names the setting.

use anyhow::{bail, Result};

/// Image side in pixels (decoded images, `sample --size`, data-set image sizes).
pub const MAX_IMAGE_SIDE: usize = 16_384;
/// Pixels of one image (decoded images, `sample --size`, tiles).
pub const MAX_IMAGE_PIXELS: usize = 1 << 26;
/// Pixels of a sampled image (`ride sample`, `samples.size`): sampling is sequential.
pub const MAX_SAMPLE_PIXELS: usize = 1 << 22;
/// Burn-in margin of the sampler, pixels per side.
pub const MAX_MARGIN: usize = 1024;
/// Neighbourhood size (odd).
pub const MAX_NB_SIZE: usize = 31;
/// Hidden units of one SLSTM layer.
pub const MAX_HIDDENS: usize = 4096;
/// SLSTM layers of one model.
pub const MAX_LAYERS: usize = 16;
/// MCGSM components, scales and features.
pub const MAX_COMPONENTS: usize = 4096;
pub const MAX_SCALES: usize = 64;
pub const MAX_FEATURES: usize = 4096;
/// Parameters of one model (weights, f32).
pub const MAX_PARAMS: usize = 1 << 28;
/// Threads/workers a sweep or the harness may start.
pub const MAX_WORKERS: usize = 256;
/// Ancestral initialisations of an inpainting hole.
pub const MAX_CANDIDATES: usize = 256;
/// Metropolis–Hastings sweeps of one inpainting run.
pub const MAX_SWEEPS: usize = 100_000;
/// Sweeps × hole pixels of one inpainting run: 20× the paper's 1000 sweeps of a 71×71 hole.
pub const MAX_SWEEP_PIXELS: usize = 100_000_000;
/// Tiles per evaluation batch and patches per training batch.
pub const MAX_BATCH: usize = 1 << 16;
/// Batch chunks (wavefronts run in parallel).
pub const MAX_CHUNKS: usize = 1024;
/// Images a data-set config may ask for (dead leaves, patches).
pub const MAX_IMAGES: usize = 1 << 20;
/// Training patches / cells asked for by a config.
pub const MAX_CELLS: usize = 1 << 28;

/// Bytes of a config file (TOML).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Cells of one sweep (grid × seeds), checked before any is built.
pub const MAX_SWEEP_CELLS: usize = 10_000;
/// Threads of `ride bench`.
pub const MAX_THREADS: usize = 256;

/// Reads a config file: a regular file of at most [`MAX_CONFIG_BYTES`], UTF-8.
pub fn read_config(path: &std::path::Path) -> Result<String> {
    let bytes = crate::io::files::read_bounded(path, MAX_CONFIG_BYTES, "config")?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}

/// `value` must lie in `lo..=hi`; the error names `what` and the bound.
pub fn check(what: &str, value: usize, lo: usize, hi: usize) -> Result<usize> {
    if value < lo || value > hi {
        bail!("{what} = {value} is out of range: it must be between {lo} and {hi}");
    }
    Ok(value)
}

/// `value` must be finite and > 0.
pub fn check_positive(what: &str, value: f64) -> Result<f64> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{what} = {value}: must be a finite number > 0");
    }
    Ok(value)
}
