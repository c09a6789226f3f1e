//! Brodatz texture plates (docs/MODEL.md §7, texture synthesis and inpainting): Randen's digitisation,
//! `DATA_DIR/brodatz/D{n}.gif`, 8-bit gray (640×640; D1 is 643×643), divided by 255.

use crate::io::images::{load_gray, GrayImage, GrayMode};
use anyhow::{bail, Result};
use std::path::Path;

/// Loads plate `plate` (e.g. `"D1"`) as gray / 255, values in [0,1].
pub fn load_plate(data_dir: &Path, plate: &str) -> Result<GrayImage> {
    let path = data_dir.join("brodatz").join(format!("{plate}.gif"));
    if !path.is_file() {
        bail!(
            "Brodatz plate '{plate}' not found: {} does not exist (plates are D1–D112 except D14)",
            path.display()
        );
    }
    let mut img = load_gray(&path, GrayMode::Pil)?;
    for v in &mut img.data {
        *v /= 255.0;
    }
    Ok(img)
}
