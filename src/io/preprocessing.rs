//! How images become model units, recorded in every model file and applied by `ride eval`,
//! `ride sample` and `ride inpaint` (or refused when an input cannot be brought into the
//! model's domain).
//!
//! | domain       | model units                                                           |
//! |--------------|-----------------------------------------------------------------------|
//! | `bsds300`    | PIL gray / 255 (training images dequantised with U[0,1) / 255)        |
//! | `deadleaves` | our generator, quantised to 8 bits, (q + U[0,1)) / 255                |
//! | `brodatz`    | 8-bit plate / 255                                                     |
//! | `gray8`      | any 8-bit gray image / `scale` (synthetic data, tests)                |
//! | `vanhateren` | ln of the 2×2 block mean of (raw `.iml` count + U[0,1)), `data::vanhateren` |
//! | `bsds300_patches` | BSDS300 8×8 patches / 255, DC removed, zero-padded (`data::bsds300_patches`) |
//!
//! The first four share one convention (an 8-bit gray image divided by `scale`), so any 8-bit
//! image can be scored by such a model. The van Hateren log domain has no 8-bit image form:
//! eval and inpaint refuse 8-bit images for it, and samples are written as 16-bit PNGs of the
//! intensities `exp(v)` (the `.iml` count units). Patch models have no whole-image form at
//! all: eval, sample and inpaint refuse them.

use crate::io::images::{load_gray, GrayImage, GrayMode};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The data protocol a model was trained under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    Bsds300,
    Deadleaves,
    Brodatz,
    Gray8,
    Vanhateren,
    #[serde(rename = "bsds300_patches")]
    Bsds300Patches,
}

impl Domain {
    pub const ALL: [Domain; 6] = [
        Self::Bsds300,
        Self::Deadleaves,
        Self::Brodatz,
        Self::Gray8,
        Self::Vanhateren,
        Self::Bsds300Patches,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Bsds300 => "bsds300",
            Self::Deadleaves => "deadleaves",
            Self::Brodatz => "brodatz",
            Self::Gray8 => "gray8",
            Self::Vanhateren => "vanhateren",
            Self::Bsds300Patches => "bsds300_patches",
        }
    }

    /// True for the domains whose model units are an 8-bit gray image divided by a scale.
    pub fn is_gray8(self) -> bool {
        !matches!(self, Self::Vanhateren | Self::Bsds300Patches)
    }
}

impl std::str::FromStr for Domain {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .with_context(|| {
                format!(
                    "unknown preprocessing domain '{s}' (known: {})",
                    Self::ALL.map(|d| d.name()).join(", ")
                )
            })
    }
}

/// How raw images become model inputs (stored with the model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    pub domain: Domain,
    /// Grayscale conversion of colour images ("pil": ITU-R 601-2 luma, integer rounding).
    pub gray: String,
    /// 8-bit domains: pixel values are divided by this (255 → the [0,1] scale). 1 for the
    /// log domain.
    pub scale: f64,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self::gray8(Domain::Gray8)
    }
}

impl Preprocessing {
    /// An 8-bit domain at the [0,1] scale (gray / 255).
    pub fn gray8(domain: Domain) -> Self {
        Self {
            domain,
            gray: "pil".into(),
            scale: if domain == Domain::Vanhateren {
                1.0
            } else {
                255.0
            },
        }
    }

    /// Checks the values: a known grayscale mode, a finite positive scale.
    pub fn validate(&self) -> Result<()> {
        self.gray_mode()?;
        crate::limits::check_positive("preprocessing.scale", self.scale)?;
        if self.domain == Domain::Vanhateren && self.scale != 1.0 {
            bail!(
                "preprocessing.scale = {} for the {} log domain: must be 1",
                self.scale,
                self.domain.name()
            );
        }
        Ok(())
    }

    pub fn gray_mode(&self) -> Result<GrayMode> {
        self.gray
            .parse()
            .with_context(|| "preprocessing.gray".to_string())
    }

    /// Parses the JSON stored in a model file's metadata; unknown keys or values are errors.
    pub fn from_json(text: &str) -> Result<Self> {
        let p: Self = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("metadata 'preprocessing' is invalid: {e}"))?;
        p.validate()?;
        Ok(p)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Loads an image file in model units: 8-bit domains only (gray / `scale`, with `scale`
    /// overriding the model's when given). Other domains are refused, saying what they expect.
    pub fn load_image(&self, path: &Path, scale: Option<f64>) -> Result<GrayImage> {
        if self.domain == Domain::Bsds300Patches {
            bail!(
                "{}: the model was trained on DC-free, zero-padded 8×8 patches (bsds300_patches); \
                 it has no whole-image density. Score it with `ride train`/`ride reproduce`",
                path.display()
            );
        }
        if !self.domain.is_gray8() {
            bail!(
                "{}: the model was trained in the {} log domain (ln of 2×2-averaged raw .iml counts); \
                 an 8-bit image cannot be brought into it. Score such models with `ride train`/`ride reproduce` on .iml data",
                path.display(),
                self.domain.name()
            );
        }
        let scale = match scale {
            Some(s) => crate::limits::check_positive("--scale", s)?,
            None => self.scale,
        };
        let mut img = load_gray(path, self.gray_mode()?)?;
        img.data.iter_mut().for_each(|v| *v /= scale);
        Ok(img)
    }

    /// Encodes model-unit values as a PNG: 8-bit gray (`v · scale`, rounded, clamped to
    /// 0…255) in the 8-bit domains; 16-bit gray intensities `exp(v)` (rounded, clamped to
    /// 0…65535) in the log domain. Non-finite values are an error.
    pub fn encode_png(&self, values: &[f64], h: usize, w: usize) -> Result<Vec<u8>> {
        if values.len() != h * w {
            bail!("{} values for a {h}×{w} image", values.len());
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            bail!(
                "pixel {k} (row {}, col {}) is {}: refusing to write an image",
                k / w.max(1),
                k % w.max(1),
                values[k]
            );
        }
        let mut out = std::io::Cursor::new(Vec::new());
        let (w32, h32) = (w as u32, h as u32);
        if self.domain == Domain::Bsds300Patches {
            bail!("a bsds300_patches model (DC-free padded patches) has no image form to write");
        }
        if self.domain.is_gray8() {
            let bytes: Vec<u8> = values
                .iter()
                .map(|v| (v * self.scale).round().clamp(0.0, 255.0) as u8)
                .collect();
            image::GrayImage::from_raw(w32, h32, bytes)
                .context("image buffer has the wrong size")?
                .write_to(&mut out, image::ImageFormat::Png)?;
        } else {
            let px: Vec<u16> = values
                .iter()
                .map(|v| v.exp().round().clamp(0.0, 65535.0) as u16)
                .collect();
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w32, h32, px)
                .context("image buffer has the wrong size")?
                .write_to(&mut out, image::ImageFormat::Png)?;
        }
        Ok(out.into_inner())
    }
}
