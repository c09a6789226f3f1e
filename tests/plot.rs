//! Figures are written as PNG + SVG with visible content (embedded font, no system fonts).

use ride::io::plot::{
    image_grid, line_plot, png_content, LinePlot, Panel, Series, LINE_PLOT_SIZE, TITLE_BAND_PX,
};

/// Non-background fraction above which a region counts as drawn on.
const INK: f64 = 0.005;

fn nb_size_plot() -> LinePlot {
    let x = vec![1.0, 2.0, 4.0, 8.0, 16.0];
    LinePlot {
        title: "Dead leaves: bits/px vs nb_size".into(),
        x_label: "neighbourhood size".into(),
        y_label: "bits/px".into(),
        series: vec![
            Series {
                label: "RIDE".into(),
                x: x.clone(),
                y: vec![6.9, 6.5, f64::NAN, 6.2, 6.1],
                err: Some(vec![0.05, 0.04, 0.04, 0.03, 0.08]),
                members: vec![],
            },
            Series {
                label: "MCGSM".into(),
                x,
                y: vec![6.0, 5.9, 5.8, 5.75, 5.7],
                err: Some(vec![0.06; 5]),
                members: vec![],
            },
        ],
        log_x: true,
        points: true,
    }
}

/// x = batch number, y = bits/px: many points, lines only, plus a one-point series.
fn learning_curve() -> LinePlot {
    let n = 50_000;
    LinePlot {
        title: "Learning curve".into(),
        x_label: "batch".into(),
        y_label: "bits/px".into(),
        series: vec![
            Series {
                label: "train".into(),
                x: (0..n).map(|i| i as f64).collect(),
                y: (0..n)
                    .map(|i| 4.0 + 2.0 / (1.0 + i as f64 / 500.0))
                    .collect(),
                err: None,
                members: vec![],
            },
            Series {
                label: "validation".into(),
                x: vec![25_000.0],
                y: vec![4.3],
                err: None,
                members: vec![],
            },
        ],
        log_x: false,
        points: false,
    }
}

fn panel(title: &str, n: usize, f: impl Fn(usize, usize) -> f64) -> Panel {
    Panel {
        title: title.into(),
        image: (0..n * n).map(|i| f(i / n, i % n)).collect(),
        h: n,
        w: n,
        range: (0.0, 1.0),
    }
}

/// Two rows of different panel sizes; the masked panel has NaNs (shown black).
fn grid_rows() -> Vec<Vec<Panel>> {
    vec![
        vec![
            panel("training", 40, |r, c| ((r / 5 + c / 5) % 2) as f64),
            panel("MCGSM sample", 40, |r, c| {
                ((r * 7 + c * 13) % 17) as f64 / 16.0
            }),
            panel("RIDE sample", 40, |r, _| r as f64 / 39.0),
        ],
        vec![
            panel("original", 300, |r, c| {
                ((r as f64 / 20.0).sin() + (c as f64 / 30.0).cos()).abs() / 2.0
            }),
            panel("masked", 300, |r, c| {
                if (100..200).contains(&r) && (100..200).contains(&c) {
                    f64::NAN
                } else {
                    0.5
                }
            }),
        ],
    ]
}

#[test]
fn line_plot_with_error_bars_has_ink_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("figs/nb_size");
    line_plot(&nb_size_plot(), &stem).unwrap();

    let png = stem.with_extension("png");
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(svg.contains("Dead leaves: bits/px vs nb_size"));
    assert!(svg.contains("MCGSM"), "legend text in the SVG");
    let c = png_content(&png).unwrap();
    assert!(c.plot_area_ink > INK, "{c:?}");
    assert!(c.text_band_ink > INK, "{c:?}");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), LINE_PLOT_SIZE);
}

#[test]
fn learning_curve_with_many_points_and_a_single_point_series() {
    let dir = tempfile::tempdir().unwrap();
    let plot = learning_curve();
    let stem = dir.path().join("curve");
    line_plot(&plot, &stem).unwrap();
    let svg = std::fs::metadata(stem.with_extension("svg")).unwrap();
    assert!(
        svg.len() < 1_000_000,
        "decimated SVG, got {} bytes",
        svg.len()
    );
    let c = png_content(&stem.with_extension("png")).unwrap();
    assert!(c.plot_area_ink > INK && c.text_band_ink > INK, "{c:?}");
}

#[test]
fn degenerate_line_plots() {
    let dir = tempfile::tempdir().unwrap();
    let one = LinePlot {
        title: "one point".into(),
        series: vec![Series {
            label: "only".into(),
            x: vec![3.0],
            y: vec![1.5],
            err: Some(vec![0.1]),
            members: vec![],
        }],
        points: true,
        ..Default::default()
    };
    line_plot(&one, &dir.path().join("one")).unwrap();

    let empty = LinePlot {
        title: "nothing here".into(),
        ..Default::default()
    };
    let e = line_plot(&empty, &dir.path().join("empty")).unwrap_err();
    assert!(format!("{e:#}").contains("nothing here"), "{e:#}");

    let all_nan = LinePlot {
        title: "all nan".into(),
        series: vec![Series {
            x: vec![1.0, 2.0],
            y: vec![f64::NAN; 2],
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = line_plot(&all_nan, &dir.path().join("nan")).unwrap_err();
    assert!(format!("{e:#}").contains("all nan"), "{e:#}");

    let mismatched = LinePlot {
        title: "bad".into(),
        series: vec![Series {
            x: vec![1.0, 2.0],
            y: vec![1.0],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(line_plot(&mismatched, &dir.path().join("bad")).is_err());
}

#[test]
fn image_grid_has_ink_and_titles() {
    let dir = tempfile::tempdir().unwrap();
    let rows = grid_rows();
    let stem = dir.path().join("grid");
    image_grid("Texture synthesis", &rows, &stem).unwrap();

    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(svg.contains("Texture synthesis"));
    assert!(svg.contains("RIDE sample"));
    assert_eq!(svg.matches("<image ").count(), 5);
    assert!(svg.len() < 2_000_000, "SVG is {} bytes", svg.len());
    let c = png_content(&stem.with_extension("png")).unwrap();
    assert!(c.plot_area_ink > INK && c.text_band_ink > INK, "{c:?}");

    let bad = vec![vec![Panel {
        title: "short".into(),
        image: vec![0.0; 3],
        h: 2,
        w: 2,
        range: (0.0, 1.0),
    }]];
    let e = image_grid("Broken", &bad, &dir.path().join("bad")).unwrap_err();
    assert!(format!("{e:#}").contains("short"), "{e:#}");
    assert!(image_grid("None", &[], &dir.path().join("none")).is_err());
}

#[test]
fn blank_png_has_no_ink() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = LINE_PLOT_SIZE;
    let path = dir.path().join("blank.png");
    image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]))
        .save(&path)
        .unwrap();
    let c = png_content(&path).unwrap();
    assert_eq!(c.plot_area_ink, 0.0);
    assert_eq!(c.text_band_ink, 0.0);

    let tiny = dir.path().join("tiny.png");
    image::RgbImage::new(10, TITLE_BAND_PX).save(&tiny).unwrap();
    assert!(png_content(&tiny).is_err());
}

/// Keeps the figures for a look by eye:
/// `RIDE_PLOT_KEEP=/some/dir cargo test --release --test plot -- --ignored keep_examples`.
#[test]
#[ignore = "writes example figures for a look by eye; needs RIDE_PLOT_KEEP=DIR"]
fn keep_examples_when_asked() {
    let dir = std::env::var("RIDE_PLOT_KEEP").expect("set RIDE_PLOT_KEEP=DIR (where to write)");
    let dir = std::path::Path::new(&dir);
    line_plot(&nb_size_plot(), &dir.join("nb_size")).unwrap();
    line_plot(&learning_curve(), &dir.join("curve")).unwrap();
    image_grid("Texture synthesis", &grid_rows(), &dir.join("grid")).unwrap();
    let rows = vec![vec![
        panel("original", 64, |r, c| ((r / 8 + c / 8) % 2) as f64),
        panel("masked", 64, |r, c| {
            if (20..44).contains(&r) && (20..44).contains(&c) {
                0.5
            } else {
                ((r / 8 + c / 8) % 2) as f64
            }
        }),
        panel("filled", 64, |r, c| ((r * 3 + c * 5) % 11) as f64 / 10.0),
    ]];
    image_grid("Inpainting", &rows, &dir.join("inpaint")).unwrap();
}
