//! Grids of gray images (texture samples, inpainting) with titles.

use super::*;

/// One gray image panel: row-major `h`×`w`, shown linearly from `range.0` (black) to
/// `range.1` (white), clamped; NaN shows as black.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
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
}
