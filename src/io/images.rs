//! Reading images as grayscale arrays, exactly as the original data pipeline converted them.
//!
//! Every decode problem is an error naming the file: JPEGs are first decoded in zune-jpeg's
//! strict mode (a truncated or corrupt entropy stream is an error there, where the lenient
//! decoder would fill the rest with gray), then decoded as before, so accepted files give the
//! same values as PIL. Values are returned on the 8-bit scale 0…255 whatever the file's bit
//! depth (16-bit samples are divided by 257, so `v16 / 65535 = v8 / 255`).

use crate::limits::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// A grayscale image, row-major. Decoded files hold values on the 8-bit scale 0…255; data-set
/// loaders put their own units in it (model units, log intensities).
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

impl GrayMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pil => "pil",
        }
    }
}

/// PIL's integer luma of one RGB pixel.
#[inline]
pub fn pil_luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "gif"];

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
            let mut files = vec![];
            for e in std::fs::read_dir(p).with_context(|| format!("cannot list {}", p.display()))? {
                let f = e
                    .with_context(|| format!("cannot list {}", p.display()))?
                    .path();
                if is_image(&f) {
                    // a dangling link or a device among the images is an error, not a skip
                    if !f.is_file() {
                        bail!("{}: not a readable regular file", f.display());
                    }
                    files.push(f);
                }
            }
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
        } else if p.exists() {
            bail!("{}: not a regular file or directory", p.display());
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    // the same file twice would count its tiles twice and understate the standard error
    let mut seen = std::collections::HashSet::new();
    for f in &out {
        let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        if !seen.insert(key) {
            bail!("{}: given more than once", f.display());
        }
    }
    Ok(out)
}

/// Strict decode of a JPEG stream (result discarded): errors on premature ends, markers inside
/// the entropy-coded data and other corruption that the lenient decoder papers over.
fn check_jpeg_strict(bytes: &[u8]) -> Result<()> {
    use zune_core::bytestream::ZCursor;
    use zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(MAX_IMAGE_SIDE)
        .set_max_height(MAX_IMAGE_SIDE);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    d.decode().map_err(|e| anyhow!("{e:?}"))?;
    // a clean stream ends with the EOI marker (trailing padding after it is allowed)
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        bail!("no end-of-image marker (truncated file)");
    }
    Ok(())
}

/// Decodes an image file; any problem is an error naming the file.
fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bytes = crate::io::files::read_bounded(path, 1 << 30, "image")?;
    let bad = |what: &str| {
        format!(
            "{}: not a readable image: {what} (corrupt, truncated or unsupported)",
            path.display()
        )
    };
    let fmt = image::guess_format(&bytes).with_context(|| bad("unrecognised image format"))?;
    if fmt == image::ImageFormat::Jpeg {
        check_jpeg_strict(&bytes).with_context(|| bad("JPEG does not decode cleanly"))?;
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes), fmt);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    limits.max_alloc = Some((MAX_IMAGE_PIXELS * 8) as u64);
    reader.limits(limits);
    reader.decode().with_context(|| bad("decoding failed"))
}

/// Loads an image file as grayscale on the 8-bit scale 0…255 (colour converted with `mode`,
/// 16-bit samples divided by 257, alpha ignored as PIL's `convert("L")` does).
pub fn load_gray(path: &Path, mode: GrayMode) -> Result<GrayImage> {
    use image::DynamicImage as D;
    let img = decode(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        bail!("{}: image has no pixels ({w}×{h})", path.display());
    }
    let GrayMode::Pil = mode;
    let data: Vec<f64> = match img {
        D::ImageLuma8(g) => g.into_raw().into_iter().map(f64::from).collect(),
        D::ImageLuma16(g) => g
            .into_raw()
            .into_iter()
            .map(|v| f64::from(v) / 257.0)
            .collect(),
        D::ImageLumaA8(g) => g.pixels().map(|p| f64::from(p[0])).collect(),
        D::ImageLumaA16(g) => g.pixels().map(|p| f64::from(p[0]) / 257.0).collect(),
        D::ImageRgb8(_) | D::ImageRgba8(_) | D::ImageRgb16(_) | D::ImageRgba16(_) => img
            .to_rgb8()
            .pixels()
            .map(|p| f64::from(pil_luma(p[0], p[1], p[2])))
            .collect(),
        other => bail!(
            "{}: unsupported pixel format {:?} (supported: 1–16-bit gray, 8/16-bit RGB, with or without alpha)",
            path.display(),
            other.color()
        ),
    };
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(GrayImage { name, h, w, data })
}

/// Decodes an image whose pixels are exactly 8-bit gray values: `(h, w, pixels)`. Gray
/// 8-bit files as they are; colour or gray-alpha 8-bit files only if every pixel is gray
/// (R = G = B) and opaque (a GIF plate with a gray palette, say). Anything a lossless
/// 8-bit gray codec could not reproduce is an error naming the file and the reason.
pub fn decode_exact_gray8(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    use image::DynamicImage as D;
    let img = decode(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        bail!("{}: image has no pixels ({w}×{h})", path.display());
    }
    let not_gray = |what: &str| {
        anyhow!(
            "{}: {what}; the codec codes 8-bit gray images losslessly (convert it to 8-bit gray first)",
            path.display()
        )
    };
    let pixels = match img {
        D::ImageLuma8(g) => g.into_raw(),
        D::ImageLumaA8(g) => {
            if g.pixels().any(|p| p[1] != 255) {
                return Err(not_gray("it has transparent pixels"));
            }
            g.pixels().map(|p| p[0]).collect()
        }
        D::ImageRgb8(g) => {
            if g.pixels().any(|p| p[0] != p[1] || p[1] != p[2]) {
                return Err(not_gray("it is a colour image"));
            }
            g.pixels().map(|p| p[0]).collect()
        }
        D::ImageRgba8(g) => {
            if g.pixels().any(|p| p[0] != p[1] || p[1] != p[2]) {
                return Err(not_gray("it is a colour image"));
            }
            if g.pixels().any(|p| p[3] != 255) {
                return Err(not_gray("it has transparent pixels"));
            }
            g.pixels().map(|p| p[0]).collect()
        }
        other => {
            return Err(not_gray(&format!(
                "its pixel format is {:?}, not 8 bits per sample",
                other.color()
            )))
        }
    };
    Ok((h, w, pixels))
}
