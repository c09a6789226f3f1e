//! Figures for the paper's results: line plots (bits/px vs. neighbourhood size, learning curves)
//! and grids of gray images (texture samples, inpainting), each written as PNG **and** SVG.
//!
//! Text is rendered with an embedded DejaVu Sans (`assets/fonts/`, Bitstream Vera licence)
//! through plotters' `ab_glyph` backend, so no system fonts, fontconfig or freetype are needed.
//! PNGs are encoded with the `image` crate (already a dependency) rather than plotters' own
//! encoder, which would pull in a second `image` version.

mod grid;
mod lines;

pub use grid::{image_grid, Panel};
pub use lines::{line_plot, LinePlot, Series};

use std::fs;
use std::io::Cursor;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

/// DejaVu Sans 2.37 (Debian fonts-dejavu-core); licence in `assets/fonts/DejaVuSans-LICENSE.txt`.
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FONT: &str = "sans-serif";

/// Height in pixels of the title band at the top of every figure; [`png_content`] relies on it.
pub const TITLE_BAND_PX: u32 = 48;
/// Size of a [`line_plot`] PNG (the SVG uses the same user units).
pub const LINE_PLOT_SIZE: (u32, u32) = (900, 600);

/// matplotlib's "tab10" palette, cycled over series.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Lines longer than this are reduced to a per-bucket min/max envelope (learning curves with
/// 10⁵ batches would otherwise make multi-megabyte SVGs for no visible gain).
const MAX_LINE_POINTS: usize = 4000;

/// Registers the embedded font once per process (plotters keeps a global font table).
fn ensure_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    if *OK.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()) {
        Ok(())
    } else {
        bail!("embedded font DejaVuSans.ttf could not be parsed")
    }
}

/// Fractions of non-background (non-white) pixels in a PNG written by this module: below the
/// title band (`plot_area_ink`) and in the top [`TITLE_BAND_PX`] rows (`text_band_ink`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Content {
    pub plot_area_ink: f64,
    pub text_band_ink: f64,
}

/// Measures [`Content`] of `png`; used by tests to check that a figure is not blank.
pub fn png_content(png: &Path) -> Result<Content> {
    let img = image::open(png)
        .with_context(|| format!("reading {}", png.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if h <= TITLE_BAND_PX || w == 0 {
        bail!(
            "{}: {w}×{h} is too small to hold a title band",
            png.display()
        );
    }
    let mut ink = [0usize; 2];
    for (_, y, p) in img.enumerate_pixels() {
        // Anti-aliased edges are light gray; a margin keeps JPEG-like noise out of the count.
        if p.0.iter().any(|&c| c < 255 - 32) {
            ink[usize::from(y >= TITLE_BAND_PX)] += 1;
        }
    }
    let band = (w * TITLE_BAND_PX) as f64;
    let rest = (w * (h - TITLE_BAND_PX)) as f64;
    Ok(Content {
        plot_area_ink: ink[1] as f64 / rest,
        text_band_ink: ink[0] as f64 / band,
    })
}

fn draw_title<DB>(band: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let (w, h) = band.dim_in_pixel();
    // 24 px, smaller for a title that would not fit the width (a long ablation title was cut)
    let mut size = 24.0;
    let style = loop {
        let style = TextStyle::from((FONT, size).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let (tw, _) = band.estimate_text_size(title, &style)?;
        if tw + 16 <= w || size <= 12.0 {
            break style;
        }
        size -= 1.0;
    };
    band.draw_text(title, &style, ((w / 2) as i32, (h / 2) as i32))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Files

/// `{stem}.png`, `{stem}.svg`, with the parent directory created.
fn output_paths(stem: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = stem
        .file_name()
        .ok_or_else(|| anyhow!("figure path {} has no file name", stem.display()))?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let with = |ext: &str| {
        let mut n = name.to_os_string();
        n.push(".");
        n.push(ext);
        stem.with_file_name(n)
    };
    Ok((with("png"), with("svg")))
}

fn save_rgb_png(path: &Path, buf: Vec<u8>, w: u32, h: u32) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| anyhow!("{}: pixel buffer has the wrong size", path.display()))?;
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}
