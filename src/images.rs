//! Reading images as grayscale arrays, exactly as the original data pipeline converted them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A grayscale image, row-major, values as stored (0…255 for 8-bit files).
#[derive(Clone, Debug)]
pub struct GrayImage {
    pub name: String,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f64>,
}

/// Grayscale conversion of colour images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrayMode {
    /// PIL's `Image.convert("L")`: ITU-R 601-2 luma with integer rounding,
    /// `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
    Pil,
}

impl std::str::FromStr for GrayMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pil" => Ok(Self::Pil),
            _ => bail!("unknown grayscale conversion '{s}' (supported: pil)"),
        }
    }
}

/// PIL's integer luma of one RGB pixel.
#[inline]
pub fn pil_luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

const EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "gif", "bmp"];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands files and directories (their image files, sorted by name) into a list of images.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_image(f))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!(
                    "{}: directory contains no images ({})",
                    p.display(),
                    EXTENSIONS.join(", ")
                );
            }
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

/// Loads an image file as grayscale (colour converted with `mode`).
pub fn load_gray(path: &Path, mode: GrayMode) -> Result<GrayImage> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| {
            format!(
                "{}: not a readable image (corrupt, truncated or unsupported format)",
                path.display()
            )
        })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<f64> = match img {
        image::DynamicImage::ImageLuma8(g) => g.into_raw().into_iter().map(f64::from).collect(),
        image::DynamicImage::ImageLuma16(g) => g.into_raw().into_iter().map(f64::from).collect(),
        other => {
            let GrayMode::Pil = mode;
            let rgb = other.to_rgb8();
            rgb.pixels()
                .map(|p| f64::from(pil_luma(p[0], p[1], p[2])))
                .collect()
        }
    };
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(GrayImage { name, h, w, data })
}
