//! The `[data]` section: where the images come from and how they become model units.

use super::check_name;
use super::defaults;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Where the images come from (docs/MODEL.md §7).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataConfig {
    /// BSDS300 JPEGs → PIL gray / 255, optional dequantisation noise on the training images.
    Bsds300 {
        #[serde(default = "defaults::dequantize")]
        dequantize: bool,
        /// use only the first N training / test images (ids sorted numerically)
        train_limit: Option<usize>,
        test_limit: Option<usize>,
        /// score the lossless gray PNGs of the test set (the fixture model's convention)
        #[serde(default = "defaults::test_gray_png")]
        test_gray_png: bool,
    },
    /// BSDS300 `size × size` patches, DC removed, zero-padded to the model's neighbourhood
    /// (`data::bsds300_patches`): `train_patches` random patches of the training images,
    /// `test_patches` of the test images (JPEG → PIL gray, dequantised like the training set).
    #[serde(rename = "bsds300_patches")]
    Bsds300Patches {
        size: usize,
        train_patches: usize,
        test_patches: usize,
        /// use only the first N training / test images (ids sorted numerically)
        train_limit: Option<usize>,
        test_limit: Option<usize>,
    },
    /// van Hateren .iml in the log domain (protocol in `data::vanhateren`), split by image id.
    Vanhateren {
        train_ids: Vec<String>,
        test_ids: Vec<String>,
    },
    /// Our dead leaves generator.
    Deadleaves {
        size: usize,
        train_images: usize,
        test_images: usize,
        min_radius: f64,
        max_radius: f64,
    },
    /// One Brodatz plate: the top `train_rows` rows train, the rest is the held-out crop.
    Brodatz { plate: String, train_rows: usize },
}

impl DataConfig {
    /// Whether the test images themselves are drawn with the row's seed (generated, or sampled
    /// patches), so that rows of two seeds are scored on different test sets and cannot be
    /// compared tile by tile. Elsewhere the test images are fixed files (the seed draws at most
    /// their dequantisation noise).
    pub fn test_set_drawn_with_seed(&self) -> bool {
        match self {
            Self::Deadleaves { .. } | Self::Bsds300Patches { .. } => true,
            Self::Bsds300 { .. } | Self::Vanhateren { .. } | Self::Brodatz { .. } => false,
        }
    }

    /// Sizes and names within bounds, before anything is loaded or generated.
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        match self {
            Self::Bsds300 {
                train_limit,
                test_limit,
                ..
            } => {
                for (k, v) in [
                    ("data.train_limit", train_limit),
                    ("data.test_limit", test_limit),
                ] {
                    if let Some(n) = v {
                        lim::check(k, *n, 1, lim::MAX_IMAGES)?;
                    }
                }
            }
            Self::Bsds300Patches {
                size,
                train_patches,
                test_patches,
                train_limit,
                test_limit,
            } => {
                lim::check("data.size", *size, 2, 256)?;
                lim::check(
                    "data.train_patches",
                    *train_patches,
                    1,
                    lim::MAX_CELLS / (size * size),
                )?;
                lim::check(
                    "data.test_patches",
                    *test_patches,
                    1,
                    lim::MAX_CELLS / (size * size),
                )?;
                for (k, v) in [
                    ("data.train_limit", train_limit),
                    ("data.test_limit", test_limit),
                ] {
                    if let Some(n) = v {
                        lim::check(k, *n, 1, lim::MAX_IMAGES)?;
                    }
                }
            }
            Self::Vanhateren {
                train_ids,
                test_ids,
            } => {
                for (k, ids) in [("data.train_ids", train_ids), ("data.test_ids", test_ids)] {
                    if ids.is_empty() {
                        bail!("{k} is empty");
                    }
                    for id in ids {
                        check_name(k, id)?;
                    }
                }
                for (k, ids) in [("data.train_ids", train_ids), ("data.test_ids", test_ids)] {
                    if let Some((i, id)) = ids
                        .iter()
                        .enumerate()
                        .find(|(i, id)| ids[..*i].contains(id))
                    {
                        bail!("{k}[{i}] = '{id}' is listed twice");
                    }
                }
                if let Some(id) = test_ids.iter().find(|id| train_ids.contains(id)) {
                    bail!("'{id}' is in both data.train_ids and data.test_ids: the test images must be held out");
                }
            }
            Self::Deadleaves {
                size,
                train_images,
                test_images,
                min_radius,
                max_radius,
            } => {
                lim::check("data.size", *size, 1, lim::MAX_IMAGE_SIDE)?;
                let per = size * size;
                lim::check("data.train_images", *train_images, 1, lim::MAX_CELLS / per)?;
                lim::check("data.test_images", *test_images, 1, lim::MAX_CELLS / per)?;
                lim::check_positive("data.min_radius", *min_radius)?;
                lim::check_positive("data.max_radius", *max_radius)?;
                if min_radius > max_radius {
                    bail!("data.min_radius = {min_radius} > data.max_radius = {max_radius}");
                }
            }
            Self::Brodatz { plate, .. } => check_name("data.plate", plate)?,
        }
        Ok(())
    }

    /// The preprocessing a model trained on this data records (`crate::io::preprocessing`).
    pub fn preprocessing(&self) -> crate::io::preprocessing::Preprocessing {
        use crate::io::preprocessing::{Domain, Preprocessing};
        Preprocessing::gray8(match self {
            Self::Bsds300 { .. } => Domain::Bsds300,
            Self::Bsds300Patches { .. } => Domain::Bsds300Patches,
            Self::Vanhateren { .. } => Domain::Vanhateren,
            Self::Deadleaves { .. } => Domain::Deadleaves,
            Self::Brodatz { .. } => Domain::Brodatz,
        })
    }
}
