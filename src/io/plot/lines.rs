//! Line plots: bits/px against a swept setting, learning curves.

use super::*;

/// One curve: `y` against `x`, optionally with ± half-width error bars `err`, and optionally
/// the single points behind each mean (e.g. every seed of a sweep cell) as small open circles.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub err: Option<Vec<f64>>,
    pub members: Vec<(f64, f64)>,
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
            for &(x, y) in &s.members {
                if x.is_finite() && y.is_finite() && (!plot.log_x || x > 0.0) {
                    xr.add(x);
                    yr.add(y);
                }
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
        // points at a few x values (nb_size 3, 5, 7, 9; 1–3 layers): ticks at those values
        // rather than at fractions no model has
        let xs = data_x(plot, &data.x);
        if plot.points && (1..=12).contains(&xs.len()) {
            draw_chart(
                &body,
                plot,
                data,
                TickedAxis {
                    x: data.x.clone(),
                    ticks: xs,
                },
            )
        } else {
            draw_chart(&body, plot, data, data.x.clone())
        }
    }
}

/// A linear x axis with ticks (labels and grid lines) at given values only: plotters' own
/// `with_key_points` on an f64 range has no default formatting, which the mesh needs.
struct TickedAxis {
    x: Range<f64>,
    ticks: Vec<f64>,
}

impl plotters::coord::ranged1d::Ranged for TickedAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.x.start) / (self.x.end - self.x.start);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // the bold lines and labels at the ticks; no light lines between them
        if hint.weight().allow_light_points() {
            vec![]
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.x.clone()
    }
}

/// The distinct x values of the series inside `range`, ascending.
fn data_x(plot: &LinePlot, range: &Range<f64>) -> Vec<f64> {
    let mut xs: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.x.iter().copied())
        .filter(|x| range.contains(x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Log-axis ticks: the data's own x values when there are few (e.g. nb_size 1, 2, 4, 8),
/// else 1-2-5 per decade (1…9 when the range spans less than a decade). Plotters' own log ticks
/// crowd the last decade with unlabelled grid lines.
fn log_ticks(plot: &LinePlot, range: &Range<f64>) -> Vec<f64> {
    let xs = data_x(plot, range);
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
        let lines: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .filter(|r| r.len() > 1)
            .map(|r| decimate(r))
            .collect();
        // a dense zig-zag drawn 2 px wide shows gaps at its sharp turns (the backend's thick
        // polylines): dense lines are drawn 1 px wide
        let anno = chart.draw_series(lines.into_iter().map(|p| {
            let width = if p.len() > DENSE_LINE_POINTS { 1 } else { 2 };
            PathElement::new(p, color.stroke_width(width))
        }))?;
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
        let members = s
            .members
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!plot.log_x || *x > 0.0));
        chart.draw_series(members.map(|&(x, y)| Circle::new((x, y), 3, color.stroke_width(1))))?;
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(legend_corner(plot, data))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 15))
            .draw()?;
    }
    Ok(())
}

/// The corner for the legend that covers the fewest data points (markers, error-bar ends,
/// seeds' points), preferring upper right, upper left, lower right, lower left on ties. The
/// legend's size is estimated from its labels (15 px text on a chart of about 790×490 px).
fn legend_corner(plot: &LinePlot, data: &LineData) -> SeriesLabelPosition {
    let rel_x = |x: f64| {
        if plot.log_x {
            (x.log10() - data.x.start.log10()) / (data.x.end.log10() - data.x.start.log10())
        } else {
            (x - data.x.start) / (data.x.end - data.x.start)
        }
    };
    let rel_y = |y: f64| (y - data.y.start) / (data.y.end - data.y.start);
    let mut points: Vec<(f64, f64)> = vec![];
    for run in data.runs.iter().flatten() {
        for &(x, y, e) in run {
            for yy in [y - e, y, y + e] {
                points.push((rel_x(x), rel_y(yy)));
            }
        }
    }
    for s in &plot.series {
        points.extend(s.members.iter().map(|&(x, y)| (rel_x(x), rel_y(y))));
    }
    let labelled = plot.series.iter().filter(|s| !s.label.is_empty());
    let chars = labelled
        .clone()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    let w = (chars as f64 * 8.5 + 60.0) / 790.0;
    let h = (labelled.count() as f64 * 22.0 + 16.0) / 490.0;
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w..1.0, 1.0 - h..1.0),
        (SeriesLabelPosition::UpperLeft, 0.0..w, 1.0 - h..1.0),
        (SeriesLabelPosition::LowerRight, 1.0 - w..1.0, 0.0..h),
        (SeriesLabelPosition::LowerLeft, 0.0..w, 0.0..h),
    ];
    let covered = |xs: &Range<f64>, ys: &Range<f64>| {
        points
            .iter()
            .filter(|(x, y)| xs.contains(x) && ys.contains(y))
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, xs, ys)| covered(xs, ys))
        .map_or(SeriesLabelPosition::UpperRight, |(pos, _, _)| pos)
}

/// Points above which a line is drawn 1 px wide instead of 2.
const DENSE_LINE_POINTS: usize = 200;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_goes_to_a_corner_without_data() {
        let series = |y: Vec<f64>| Series {
            label: "a series".into(),
            x: vec![1.0, 2.0, 3.0],
            y,
            ..Default::default()
        };
        let corner = |plot: &LinePlot| legend_corner(plot, &LineData::new(plot).expect("data"));
        // rising: the upper right and lower left are taken, the upper left is free
        let mut plot = LinePlot {
            series: vec![series(vec![1.0, 2.0, 3.0])],
            points: true,
            ..Default::default()
        };
        assert!(matches!(corner(&plot), SeriesLabelPosition::UpperLeft));
        // high at both ends: the lower right
        plot.series = vec![series(vec![3.0, 1.0, 3.0])];
        assert!(matches!(corner(&plot), SeriesLabelPosition::LowerRight));
        // falling: the upper right is free again
        plot.series = vec![series(vec![3.0, 2.0, 1.0])];
        assert!(matches!(corner(&plot), SeriesLabelPosition::UpperRight));
    }

    #[test]
    fn a_long_title_is_shrunk_to_fit_the_width() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stem = tmp.path().join("long");
        let plot = LinePlot {
            title: "Ablation: log-likelihood rate vs neighbourhood size (nb_size), van Hateren (paper scale), and more words"
                .into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "s".into(),
                x: vec![1.0, 2.0],
                y: vec![1.0, 2.0],
                ..Default::default()
            }],
            ..Default::default()
        };
        line_plot(&plot, &stem).expect("plot");
        let img = image::open(stem.with_extension("png"))
            .expect("png")
            .to_luma8();
        // no ink in the title band's outer 4 pixels on either side: the text is not cut
        let band = super::super::TITLE_BAND_PX;
        for y in 0..band {
            for x in (0..4).chain(img.width() - 4..img.width()) {
                assert_eq!(img.get_pixel(x, y).0[0], 255, "ink at ({x}, {y})");
            }
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
