//! BSDS300 (docs/MODEL.md §7): 200 training and 100 test JPEGs (481×321 or 321×481), as grayscale on the
//! [0,1] scale of the published models (`shared/models/README.md`).
//!
//! Each image is converted exactly as PIL's `Image.convert("L")` does
//! ([`crate::io::images::GrayMode::Pil`]) and divided by 255. For training, `dequantize` adds
//! Uniform[0,1)/255 noise to every pixel, so the values lie in [x/255, (x+1)/255); the noise of an
//! image comes from its own generator, derived from the seed and the image id, so it does not
//! depend on the split, on `limit` or on the loading order. Test-time evaluation of the published
//! models uses no noise.
//!
//! Layout: `DATA_DIR/bsds300/iids_{train,test}.txt` (one id a line) and
//! `DATA_DIR/bsds300/images/{train,test}/{id}.jpg`.

use crate::io::images::{load_gray, GrayImage, GrayMode};
use anyhow::{bail, Context, Result};
use rand::RngExt;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The BSDS300 split (BSDS500's `train` and `val` folders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// `"train"` or `"test"`, as in the file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// The split as the `stage` of [`crate::data::rng_for`]: 0 train, 1 test.
    pub fn stream(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Test => 1,
        }
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Self::Train),
            "test" => Ok(Self::Test),
            _ => bail!("unknown BSDS300 split '{s}' (supported: train, test)"),
        }
    }
}

/// The path of the id list of `split`.
pub fn id_list_path(data_dir: &Path, split: Split) -> PathBuf {
    data_dir
        .join("bsds300")
        .join(format!("iids_{}.txt", split.as_str()))
}

/// The ids of `split`, in the order of the id list.
pub fn read_ids(data_dir: &Path, split: Split) -> Result<Vec<String>> {
    let path = id_list_path(data_dir, split);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the BSDS300 {} id list {} (is the data directory right?)",
            split.as_str(),
            path.display()
        )
    })?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        bail!("{}: the id list is empty", path.display());
    }
    Ok(ids)
}

/// The per-image index of the dequantisation noise: the id's number (BSDS300 ids are numbers),
/// else FNV-1a of the id with the top bit set (disjoint from every number below 2⁶³).
fn id_stream(id: &str) -> u64 {
    id.parse::<u64>()
        .ok()
        .filter(|&n| n < 1 << 63)
        .unwrap_or_else(|| {
            id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            }) | 1 << 63
        })
}

/// Loads the first `limit` (default all) images of `split` as gray / 255, with optional
/// Uniform[0,1)/255 dequantisation noise (deterministic per seed and image id).
pub fn load(
    data_dir: &Path,
    split: Split,
    dequantize: bool,
    seed: u64,
    limit: Option<usize>,
) -> Result<Vec<GrayImage>> {
    let mut ids = read_ids(data_dir, split)?;
    if let Some(n) = limit {
        ids.truncate(n);
    }
    let dir = data_dir.join("bsds300").join("images").join(split.as_str());
    ids.par_iter()
        .map(|id| {
            let path = dir.join(format!("{id}.jpg"));
            if !path.is_file() {
                bail!(
                    "BSDS300 {} image '{id}' not found: {} does not exist",
                    split.as_str(),
                    path.display()
                );
            }
            let mut img = load_gray(&path, GrayMode::Pil)?;
            if dequantize {
                let mut rng = super::rng_for(
                    seed,
                    super::Purpose::Dequantize,
                    split.stream(),
                    id_stream(id),
                );
                for v in &mut img.data {
                    *v = (*v + rng.random::<f64>()) / 255.0;
                }
            } else {
                for v in &mut img.data {
                    *v /= 255.0;
                }
            }
            Ok(img)
        })
        .collect()
}
