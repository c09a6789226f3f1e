//! Figures for the paper's results: line plots (bits/px vs. neighbourhood size, learning curves)
//! and grids of gray images (texture samples, inpainting), each written as PNG **and** SVG.
//!
//! Text is rendered with an embedded DejaVu Sans (`assets/fonts/`, Bitstream Vera licence)
//! through plotters' `ab_glyph` backend, so no system fonts, fontconfig or freetype are needed.
//! PNGs are encoded with the `image` crate (already a dependency) rather than plotters' own
//! encoder, which would pull in a second `image` version.

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
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
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

/// One curve: `y` against `x`, optionally with ± half-width error bars `err`.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub err: Option<Vec<f64>>,
}

/// A line plot; `points` draws markers and error bars (e.g. bits/px vs. nb_size), otherwise
/// plain lines (e.g. learning curves: x = batch number, y = bits/px).
#[derive(Clone, Debug, Default)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_x: bool,
    pub points: bool,
}

/// Writes `{stem}.png` (900×600) and `{stem}.svg`, creating the parent directory.
///
/// Non-finite y (and x ≤ 0 on a log axis) are skipped, breaking the line there; error bars
/// are included in the y range. Errors name the plot or the file.
pub fn line_plot(plot: &LinePlot, stem: &Path) -> Result<()> {
    ensure_font()?;
    let data = LineData::new(plot)?;
    let (png, svg) = output_paths(stem)?;
    let (w, h) = LINE_PLOT_SIZE;

    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw_line_plot(&root, plot, &data).with_context(|| format!("drawing {}", png.display()))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    save_rgb_png(&png, buf, w, h)?;

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        draw_line_plot(&root, plot, &data).with_context(|| format!("drawing {}", svg.display()))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    fs::write(&svg, text).with_context(|| format!("writing {}", svg.display()))
}

/// One gray image panel: row-major `h`×`w`, shown linearly from `range.0` (black) to
/// `range.1` (white), clamped; NaN shows as black.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    pub title: String,
    pub image: Vec<f64>,
    pub h: usize,
    pub w: usize,
    pub range: (f64, f64),
}

/// Writes a grid of titled gray panels (`rows[r][c]`) under an overall `title` as
/// `{stem}.png` and `{stem}.svg`. Panels are scaled (nearest neighbour) to about 256 px.
/// In the SVG each panel is an embedded PNG `<image>` (block-averaged to ≤ 256 px a side), which
/// keeps files small compared with one `<rect>` per pixel.
pub fn image_grid(title: &str, rows: &[Vec<Panel>], stem: &Path) -> Result<()> {
    ensure_font()?;
    let layout = GridLayout::new(title, rows)?;
    let (png, svg) = output_paths(stem)?;
    let (w, h) = (layout.width, layout.height);

    let mut buf = vec![255u8; (w as usize) * (h as usize) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw_grid_text(&root, title, rows, &layout)
            .with_context(|| format!("drawing {}", png.display()))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    // Pixels are written directly: exact nearest-neighbour scaling, no per-pixel draw calls.
    for (panel, cell) in rows.iter().flatten().zip(&layout.cells) {
        blit_panel(&mut buf, w as usize, panel, cell);
    }
    save_rgb_png(&png, buf, w, h)?;

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        draw_grid_text(&root, title, rows, &layout)
            .with_context(|| format!("drawing {}", svg.display()))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let mut images = String::new();
    for (panel, cell) in rows.iter().flatten().zip(&layout.cells) {
        images.push_str(&svg_image(panel, cell)?);
    }
    let end = text
        .rfind("</svg>")
        .ok_or_else(|| anyhow!("{}: plotters produced no </svg>", svg.display()))?;
    text.insert_str(end, &images);
    fs::write(&svg, text).with_context(|| format!("writing {}", svg.display()))
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

// ---------------------------------------------------------------------------------------------
// Line plots

/// Validated, cleaned data of a [`LinePlot`] with its axis ranges.
struct LineData {
    /// Per series: runs of consecutive drawable points `(x, y, err)`.
    runs: Vec<Vec<Vec<(f64, f64, f64)>>>,
    x: Range<f64>,
    y: Range<f64>,
}

impl LineData {
    fn new(plot: &LinePlot) -> Result<Self> {
        let name = &plot.title;
        if plot.series.is_empty() {
            bail!("plot '{name}': no series");
        }
        let mut runs = Vec::with_capacity(plot.series.len());
        let (mut xr, mut yr) = (MinMax::default(), MinMax::default());
        for s in &plot.series {
            if s.x.len() != s.y.len() {
                bail!(
                    "plot '{name}', series '{}': {} x values but {} y values",
                    s.label,
                    s.x.len(),
                    s.y.len()
                );
            }
            if let Some(e) = &s.err {
                if e.len() != s.y.len() {
                    bail!(
                        "plot '{name}', series '{}': {} error bars for {} points",
                        s.label,
                        e.len(),
                        s.y.len()
                    );
                }
            }
            let mut series_runs = vec![];
            let mut run = vec![];
            for i in 0..s.x.len() {
                let (x, y) = (s.x[i], s.y[i]);
                // A missing or non-finite error bar just means "no bar" for that point.
                let e = s
                    .err
                    .as_ref()
                    .map_or(0.0, |e| if e[i].is_finite() { e[i].abs() } else { 0.0 });
                if x.is_finite() && y.is_finite() && (!plot.log_x || x > 0.0) {
                    xr.add(x);
                    yr.add(y - e);
                    yr.add(y + e);
                    run.push((x, y, e));
                } else if !run.is_empty() {
                    series_runs.push(std::mem::take(&mut run));
                }
            }
            if !run.is_empty() {
                series_runs.push(run);
            }
            runs.push(series_runs);
        }
        let (Some(x), Some(y)) = (xr.range(), yr.range()) else {
            bail!(
                "plot '{name}': no finite points{}",
                if plot.log_x {
                    " (log x needs x > 0)"
                } else {
                    ""
                }
            );
        };
        let x = if plot.log_x {
            let (l0, l1) = pad(x.start.log10()..x.end.log10(), 0.04);
            10f64.powf(l0)..10f64.powf(l1)
        } else {
            let (a, b) = pad(x, 0.04);
            a..b
        };
        let (y0, y1) = pad(y, 0.06);
        Ok(Self { runs, x, y: y0..y1 })
    }
}

#[derive(Default)]
struct MinMax(Option<(f64, f64)>);

impl MinMax {
    fn add(&mut self, v: f64) {
        self.0 = Some(match self.0 {
            None => (v, v),
            Some((a, b)) => (a.min(v), b.max(v)),
        });
    }
    fn range(&self) -> Option<Range<f64>> {
        self.0.map(|(a, b)| a..b)
    }
}

/// Widens `r` by `frac` of its span on each side; a zero span (one x value) gets a width
/// proportional to its magnitude so the point sits in the middle of the axis.
fn pad(r: Range<f64>, frac: f64) -> (f64, f64) {
    let span = r.end - r.start;
    if span > 0.0 {
        (r.start - frac * span, r.end + frac * span)
    } else {
        let half = if r.start == 0.0 {
            1.0
        } else {
            0.1 * r.start.abs()
        };
        (r.start - half, r.end + half)
    }
}

/// Short tick labels: up to 4 significant digits, scientific outside 1e-3..1e5.
fn fmt_num(v: &f64) -> String {
    let v = *v;
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn draw_line_plot<DB>(root: &DrawingArea<DB, Shift>, plot: &LinePlot, data: &LineData) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (band, body) = root.split_vertically(TITLE_BAND_PX);
    draw_title(&band, &plot.title)?;
    if plot.log_x {
        let ticks = log_ticks(plot, &data.x);
        draw_chart(
            &body,
            plot,
            data,
            data.x.clone().log_scale().with_key_points(ticks),
        )
    } else {
        draw_chart(&body, plot, data, data.x.clone())
    }
}

/// Log-axis ticks: the data's own x values when there are few (e.g. nb_size 1, 2, 4, 8),
/// else 1-2-5 per decade (1…9 when the range spans less than a decade). Plotters' own log ticks
/// crowd the last decade with unlabelled grid lines.
fn log_ticks(plot: &LinePlot, range: &Range<f64>) -> Vec<f64> {
    let mut xs: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.x.iter().copied())
        .filter(|x| range.contains(x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if (2..=12).contains(&xs.len()) {
        return xs;
    }
    let decades = range.start.log10().floor() as i32..=range.end.log10().ceil() as i32;
    let nice = |mult: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|k| mult.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| range.contains(v))
            .collect()
    };
    let ticks = nice(&[1.0, 2.0, 5.0]);
    if ticks.len() >= 3 {
        ticks
    } else {
        nice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// The chart body, generic over the x coordinate (linear or logarithmic).
fn draw_chart<DB, X>(
    area: &DrawingArea<DB, Shift>,
    plot: &LinePlot,
    data: &LineData,
    x: X,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(76)
        .build_cartesian_2d(x, data.y.clone())?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label.as_str())
        .y_desc(plot.y_label.as_str())
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 14))
        .x_label_formatter(&fmt_num)
        .y_label_formatter(&fmt_num)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;

    let mut labelled = false;
    for (i, (s, runs)) in plot.series.iter().zip(&data.runs).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = color.stroke_width(2);
        let lines: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .filter(|r| r.len() > 1)
            .map(|r| decimate(r))
            .collect();
        let anno = chart.draw_series(lines.into_iter().map(|p| PathElement::new(p, line)))?;
        if !s.label.is_empty() {
            labelled = true;
            anno.label(s.label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        // Markers: always when asked, and for isolated points a line cannot show.
        let marked = runs
            .iter()
            .filter(|r| plot.points || r.len() == 1)
            .flatten();
        if plot.points && s.err.is_some() {
            chart.draw_series(marked.map(|&(x, y, e)| {
                ErrorBar::new_vertical(x, y - e, y, y + e, color.filled().stroke_width(2), 9)
            }))?;
        } else {
            chart.draw_series(marked.map(|&(x, y, _)| Circle::new((x, y), 4, color.filled())))?;
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 15))
            .draw()?;
    }
    Ok(())
}

/// Keeps long runs drawable: per bucket of consecutive points, the first, min, max and last
/// (in index order), so spikes in a learning curve stay visible.
fn decimate(run: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    if run.len() <= MAX_LINE_POINTS {
        return run.iter().map(|&(x, y, _)| (x, y)).collect();
    }
    let buckets = MAX_LINE_POINTS / 4;
    let size = run.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(MAX_LINE_POINTS);
    for chunk in run.chunks(size) {
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        let mut idx = [0, lo.min(hi), lo.max(hi), chunk.len() - 1];
        idx.sort_unstable();
        let mut last = usize::MAX;
        for i in idx {
            if i != last {
                out.push((chunk[i].0, chunk[i].1));
                last = i;
            }
        }
    }
    out
}

fn draw_title<DB>(band: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let (w, h) = band.dim_in_pixel();
    let style = TextStyle::from((FONT, 24).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    band.draw_text(title, &style, ((w / 2) as i32, (h / 2) as i32))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Image grids

/// Target display size (longest side, pixels) of a panel.
const PANEL_PX: usize = 256;
const PANEL_TITLE_PX: usize = 26;
const GAP_PX: usize = 14;

/// Where each panel's pixels go (row-major over `rows`, flattened).
struct Cell {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

struct GridLayout {
    width: u32,
    height: u32,
    cells: Vec<Cell>,
}

impl GridLayout {
    fn new(title: &str, rows: &[Vec<Panel>]) -> Result<Self> {
        if rows.iter().all(|r| r.is_empty()) {
            bail!("image grid '{title}': no panels");
        }
        for p in rows.iter().flatten() {
            let who = || format!("image grid '{title}', panel '{}'", p.title);
            if p.h == 0 || p.w == 0 || p.image.len() != p.h * p.w {
                bail!("{}: {} values for {}×{}", who(), p.image.len(), p.h, p.w);
            }
            let (lo, hi) = p.range;
            if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                bail!("{}: display range {lo}..{hi} is not increasing", who());
            }
        }
        // One cell size for the whole grid so panels line up; each panel keeps its aspect.
        let scale = |p: &Panel| PANEL_PX as f64 / p.h.max(p.w) as f64;
        let disp = |p: &Panel| {
            let s = scale(p);
            (
                ((p.w as f64 * s).round() as usize).max(1),
                ((p.h as f64 * s).round() as usize).max(1),
            )
        };
        let img_w = rows.iter().flatten().map(|p| disp(p).0).max().unwrap_or(1);
        let img_h = rows.iter().flatten().map(|p| disp(p).1).max().unwrap_or(1);
        let cell_w = img_w + GAP_PX;
        let cell_h = img_h + PANEL_TITLE_PX + GAP_PX;
        let cols = rows.iter().map(Vec::len).max().unwrap_or(1);
        let mut cells = vec![];
        for (r, row) in rows.iter().enumerate() {
            for (c, p) in row.iter().enumerate() {
                let (w, h) = disp(p);
                cells.push(Cell {
                    x: GAP_PX + c * cell_w + (img_w - w) / 2,
                    y: TITLE_BAND_PX as usize + r * cell_h + PANEL_TITLE_PX + (img_h - h) / 2,
                    w,
                    h,
                });
            }
        }
        let width = GAP_PX + cols * cell_w;
        let height = TITLE_BAND_PX as usize + rows.len() * cell_h;
        Ok(Self {
            width: u32::try_from(width)?,
            height: u32::try_from(height)?,
            cells,
        })
    }
}

fn draw_grid_text<DB>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[Vec<Panel>],
    layout: &GridLayout,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (band, _) = root.split_vertically(TITLE_BAND_PX);
    draw_title(&band, title)?;
    let style = TextStyle::from((FONT, 16).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    let frame = RGBColor(160, 160, 160);
    for (p, cell) in rows.iter().flatten().zip(&layout.cells) {
        let (x, y, w, h) = (cell.x as i32, cell.y as i32, cell.w as i32, cell.h as i32);
        root.draw_text(&p.title, &style, (x + w / 2, y - 6))?;
        // A thin frame so a mostly white panel still has visible bounds.
        root.draw(&Rectangle::new([(x - 1, y - 1), (x + w, y + h)], frame))?;
    }
    Ok(())
}

/// Panel value → gray level 0..=255 (linear in `range`, clamped, NaN → black).
fn gray(p: &Panel, v: f64) -> u8 {
    let (lo, hi) = p.range;
    let t = (v - lo) / (hi - lo);
    if t.is_nan() {
        0
    } else {
        (t.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

fn blit_panel(buf: &mut [u8], stride_w: usize, p: &Panel, cell: &Cell) {
    for dy in 0..cell.h {
        let sy = (dy * p.h / cell.h).min(p.h - 1);
        for dx in 0..cell.w {
            let sx = (dx * p.w / cell.w).min(p.w - 1);
            let g = gray(p, p.image[sy * p.w + sx]);
            let o = ((cell.y + dy) * stride_w + cell.x + dx) * 3;
            if let Some(px) = buf.get_mut(o..o + 3) {
                px.fill(g);
            }
        }
    }
}

/// The panel as an SVG `<image>` holding a gray PNG, block-averaged down to ≤ [`PANEL_PX`].
fn svg_image(p: &Panel, cell: &Cell) -> Result<String> {
    let f = p.h.max(p.w).div_ceil(PANEL_PX).max(1);
    let (h, w) = (p.h.div_ceil(f), p.w.div_ceil(f));
    let mut pix = Vec::with_capacity(h * w);
    for by in 0..h {
        for bx in 0..w {
            let (mut sum, mut n) = (0.0, 0usize);
            for y in by * f..((by + 1) * f).min(p.h) {
                for x in bx * f..((bx + 1) * f).min(p.w) {
                    sum += f64::from(gray(p, p.image[y * p.w + x]));
                    n += 1;
                }
            }
            pix.push((sum / n.max(1) as f64).round() as u8);
        }
    }
    let img = image::GrayImage::from_raw(w as u32, h as u32, pix)
        .ok_or_else(|| anyhow!("panel '{}': bad buffer size", p.title))?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| format!("encoding panel '{}'", p.title))?;
    Ok(format!(
        "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
         style=\"image-rendering:pixelated\" href=\"data:image/png;base64,{}\"/>\n",
        cell.x,
        cell.y,
        cell.w,
        cell.h,
        base64(&png)
    ))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn decimate_keeps_extremes_and_ends() {
        let run: Vec<_> = (0..100_000)
            .map(|i| (i as f64, if i == 54_321 { 9.0 } else { 1.0 }, 0.0))
            .collect();
        let d = decimate(&run);
        assert!(d.len() <= MAX_LINE_POINTS);
        assert_eq!(d.first(), Some(&(0.0, 1.0)));
        assert_eq!(d.last(), Some(&(99_999.0, 1.0)));
        assert!(d.contains(&(54_321.0, 9.0)));
    }

    #[test]
    fn padding_handles_a_single_value() {
        assert_eq!(pad(2.0..2.0, 0.05), (1.8, 2.2));
        assert_eq!(pad(0.0..0.0, 0.05), (-1.0, 1.0));
        assert_eq!(fmt_num(&2.5), "2.5");
        assert_eq!(fmt_num(&-0.0), "0");
        assert_eq!(fmt_num(&1e6), "1.0e6");
    }
}
