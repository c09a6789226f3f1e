//! `ride reproduce --scale quick`: every experiment of experiments/reproduce.toml end to end at
//! the smoke-test size — CSV schemas, figures with content (ink in the plot area and the text
//! band), the report, and that a rerun reuses every finished row (with the full data sets,
//! `make test-data`); and without any data, the dead-leaves experiments alone with the others
//! named as skipped (`make test`, as on a clean clone).

mod common;

use ride::io::plot::png_content;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TABLE_HEADER: &str = "experiment,row,label,model,bits_per_px,sem,tiles,pixels,parameters,train_seconds,eval_seconds,scale,seed,git_commit,config_hash,note,single_bits_per_px,single_sem,numerics_version";
const INPAINT_HEADER: &str = "case,image,method,hole_bits_per_px,crop_bits_per_px,psnr_db,ssim,acceptance,sweeps,target,seconds,hole,seed,scale,git_commit,config_hash";

fn reproduce(out: &Path, extra: &[&str]) -> (i32, String) {
    reproduce_with(&common::full_data_dir(), out, extra)
}

fn reproduce_with(data: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ride"))
        .arg("--data-dir")
        .arg(data)
        .args(["reproduce", "--scale", "quick", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn csv_rows(path: &Path, header: &str) -> Vec<csv::StringRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        text.lines().next(),
        Some(header),
        "{}: schema",
        path.display()
    );
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records().map(|x| x.expect("CSV row")).collect()
}

fn assert_figure(stem: &Path) {
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    assert!(svg.is_file(), "{} missing", svg.display());
    let c = png_content(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(
        c.plot_area_ink > 0.005 && c.text_band_ink > 0.002,
        "{}: too little content ({c:?})",
        png.display()
    );
}

/// A clean clone: no data directory at all. The dead-leaves table and the sweeps (our generator)
/// run; every experiment that needs BSDS300, van Hateren or Brodatz is named as skipped with the
/// way to fetch the data, and the run succeeds.
#[test]
fn quick_reproduction_without_data_runs_dead_leaves_and_names_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("no-data");
    let out = tmp.path().join("quick");
    let (rc, err) = reproduce_with(&empty, &out, &[]);
    assert_eq!(rc, 0, "{err}");
    // where the run stands: every unit of work counted, skipped ones included, with an ETA
    assert!(
        err.contains("[reproduce] 1 of 86 units: table deadleaves, row mcgsm"),
        "{err}"
    );
    assert!(err.contains("units: table bsds300_large skipped"), "{err}");
    assert!(
        err.contains("[reproduce] 86 of 86 units: inpainting"),
        "{err}"
    );
    assert!(err.contains(", ETA "), "{err}");
    let recs = csv_rows(&out.join("deadleaves/table.csv"), TABLE_HEADER);
    assert_eq!(recs.len(), 5);
    for sweep in [
        "sweep_nb_size",
        "sweep_layers",
        "sweep_hiddens",
        "sweep_components",
    ] {
        assert!(out.join(sweep).join("table.csv").is_file(), "{sweep}");
    }
    for skipped in [
        "bsds300_large",
        "bsds300_patches",
        "vanhateren",
        "textures",
        "inpainting",
        "sweep_vh_nb_size",
        "sweep_vh_nb_size_mcgsm",
    ] {
        assert!(
            err.contains(&format!("[{skipped}] skipped")),
            "{skipped}: {err}"
        );
        assert!(!out.join(skipped).join("table.csv").exists());
    }
    assert!(err.contains("make data"), "{err}");
    assert!(out.join("REPORT.md").is_file());

    // `--only` one sweep of a shared figure keeps the other sweep's series
    let series = |out: &Path| -> Vec<String> {
        let mut s: Vec<String> = csv_rows(
            &out.join("ablations/nb_size.csv"),
            "series,x,bits_per_px,sem,seeds",
        )
        .iter()
        .map(|r| r[0].to_string())
        .collect();
        s.dedup();
        s
    };
    let both = series(&out);
    assert_eq!(both.len(), 2, "{both:?}");
    let (rc, err) = reproduce_with(&empty, &out, &["--only", "sweep_nb_size"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(series(&out), both);
    // a sweep still running: `--report-only` shows its finished cells and says how many
    std::fs::remove_file(out.join("sweep_nb_size/rows/0003.json")).expect("row file");
    let (rc, err) = reproduce_with(&empty, &out, &["--report-only"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        csv_rows(&out.join("sweep_nb_size/table.csv"), TABLE_HEADER).len(),
        3
    );
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
    assert!(
        report.contains("**Unfinished:** 3 of 4 cells have finished"),
        "{report}"
    );

    // a table another process is running (it holds the table's lock) is left to it: nothing
    // of it is run here, the run says so and succeeds; once let go, a rerun finishes it
    let row = out.join("deadleaves/eoride2/row.json");
    std::fs::remove_file(&row).expect("row file");
    let claim = ride::io::run_lock::RunLock::try_acquire(&out.join("deadleaves")).expect("lock");
    assert!(matches!(claim, ride::io::run_lock::Claim::Held(_)));
    let (rc, err) = reproduce_with(&empty, &out, &["--only", "deadleaves"]);
    assert_eq!(rc, 0, "{err}");
    let holder = format!("another process (pid {}", std::process::id());
    assert!(
        err.contains(&format!("[deadleaves] skipped here: {holder}")),
        "{err}"
    );
    assert!(
        err.contains("left to the other processes running them: deadleaves"),
        "{err}"
    );
    assert!(!row.exists());
    // nor does a single-row job (`--row`, Slurm) start beside it
    let (rc, err) = reproduce_with(&empty, &out, &["--only", "deadleaves", "--row", "eoride2"]);
    assert!(
        rc != 0 && err.contains(&holder) && err.contains("not started"),
        "{err}"
    );
    assert!(!row.exists());
    drop(claim);
    let (rc, err) = reproduce_with(&empty, &out, &["--only", "deadleaves"]);
    assert_eq!(rc, 0, "{err}");
    assert!(row.is_file(), "{err}");
}

#[test]
#[ignore = "needs the full data sets: make test-data"]
fn quick_reproduction_writes_every_table_figure_and_the_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out: PathBuf = tmp.path().join("quick");
    let t0 = Instant::now();
    let (rc, err) = reproduce(&out, &[]);
    let first = t0.elapsed().as_secs_f64();
    assert_eq!(rc, 0, "{err}");
    println!("ride reproduce --scale quick: {first:.0} s");

    // tables: one row per model, finite numbers, the scale recorded
    for (table, rows, samples) in [
        ("deadleaves", 5, true),
        ("bsds300_large", 7, true),
        ("bsds300_patches", 3, false),
        ("vanhateren", 5, true),
        ("textures", 8, true),
    ] {
        let dir = out.join(table);
        let recs = csv_rows(&dir.join("table.csv"), TABLE_HEADER);
        assert_eq!(recs.len(), rows, "{table}: rows");
        for r in &recs {
            let bits: f64 = r[4].parse().expect("bits_per_px");
            let sem: f64 = r[5].parse().expect("sem");
            assert!(
                bits.is_finite() && sem.is_finite() && sem >= 0.0,
                "{table}: {r:?}"
            );
            assert_eq!(&r[11], "quick");
            assert!(r[8].parse::<usize>().expect("parameters") > 0);
        }
        assert!(dir.join("provenance.json").is_file());
        assert_figure(&dir.join("learning_curves"));
        if samples {
            assert_figure(&dir.join("samples"));
        }
    }
    // sweeps: every cell once, in the common schema; one figure per swept quantity
    for (sweep, cells) in [
        ("sweep_vh_nb_size_mcgsm", 12),
        ("sweep_vh_nb_size", 27),
        ("sweep_nb_size", 4),
        ("sweep_nb_size_mcgsm", 4),
        ("sweep_layers", 3),
        ("sweep_hiddens", 4),
        ("sweep_components", 3),
    ] {
        let recs = csv_rows(&out.join(sweep).join("table.csv"), TABLE_HEADER);
        assert_eq!(recs.len(), cells, "{sweep}");
        let mut rows: Vec<&str> = recs.iter().map(|r| r.get(1).unwrap_or("")).collect();
        rows.dedup();
        assert_eq!(rows.len(), cells, "{sweep}: a cell twice");
    }
    for fig in [
        "nb_size",
        "layers",
        "hiddens",
        "components",
        "vh_nb_size",
        "vh_layers",
    ] {
        assert_figure(&out.join("ablations").join(fig));
    }
    // the van Hateren ablations: mean ± SEM over the 3 seeds of every point
    let points = std::fs::read_to_string(out.join("ablations/vh_nb_size.csv")).expect("points");
    assert_eq!(points.lines().count(), 1 + 4 + 4 + 4 + 1, "{points}");
    assert!(
        points.lines().skip(1).all(|l| l.ends_with(",3")),
        "{points}"
    );
    // inpainting: 4 cases × (mean, harmonic, MCGSM, RIDE, original), SSIM in (−1, 1], one
    // case with the window target; each
    // chain's hole log-likelihood after the initialisation and every sweep
    let recs = csv_rows(&out.join("inpainting/inpainting.csv"), INPAINT_HEADER);
    assert_eq!(recs.len(), 20);
    assert_eq!(recs.iter().filter(|r| &r[9] == "window").count(), 2);
    for r in &recs {
        let ssim: f64 = r[6].parse().expect("ssim");
        assert!(ssim > -1.0 && ssim <= 1.0, "{r:?}");
    }
    let conv =
        std::fs::read_to_string(out.join("inpainting/convergence.csv")).expect("convergence");
    // 4 cases × 2 chains × (1 + 1 sweep)
    assert_eq!(conv.lines().count(), 1 + 4 * 2 * 2, "{conv}");
    assert_figure(&out.join("inpainting/convergence_bsds300_test0"));
    assert_figure(&out.join("inpainting/acceptance_bsds300_test0"));
    for r in &recs {
        let bits: f64 = r[3].parse().expect("hole bits");
        assert!(bits.is_finite(), "{r:?}");
    }
    assert_figure(&out.join("inpainting/inpainting"));
    // the chains' saved states go once their case is kept
    let left: Vec<_> = std::fs::read_dir(out.join("inpainting/cases"))
        .expect("cases")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".chain.json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
    for needle in [
        "Dead leaves",
        "BSDS300, large images",
        "BSDS300, 8×8 patches",
        "63 dims",
        "van Hateren",
        "Brodatz texture synthesis",
        "## Ablations",
        "## Compute",
        "| RIDE, 3 layers | 5 |",
        "## Inpainting",
        "Reduced scale",
        "3.914",
        "RIDE beats the MCGSM",
        "on the same pixels",
        "RIDE beats the MCGSM at every neighbourhood size (RIDE, 1 layer − MCGSM): at 3: ",
    ] {
        assert!(report.contains(needle), "REPORT.md lacks '{needle}'");
    }

    // a rerun reuses every finished row: same table, a fraction of the time
    let before = std::fs::read(out.join("deadleaves/table.csv")).expect("table");
    let t1 = Instant::now();
    let (rc, err) = reproduce(&out, &["--only", "deadleaves", "--only", "inpainting"]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("ride1: finished earlier, reused"), "{err}");
    assert!(err.contains("[inpainting] finished earlier"), "{err}");
    assert_eq!(
        std::fs::read(out.join("deadleaves/table.csv")).expect("table"),
        before
    );
    println!("rerun of deadleaves: {:.1} s", t1.elapsed().as_secs_f64());

    // inpainting keeps each finished case: after losing one, a rerun redoes only that one
    std::fs::remove_file(out.join("inpainting/cases/bsds300_test1.json")).expect("rm case");
    std::fs::remove_file(out.join("inpainting/inpainting.csv")).expect("rm csv");
    let (rc, err) = reproduce(&out, &["--only", "inpainting"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("bsds300_test0: finished earlier, reused"),
        "{err}"
    );
    assert!(
        err.contains("bsds300_test1: RIDE fill (1 sweeps, crop target)"),
        "{err}"
    );
    assert!(!err.contains("bsds300_test0: RIDE fill"), "{err}");
    assert_eq!(
        csv_rows(&out.join("inpainting/inpainting.csv"), INPAINT_HEADER).len(),
        20
    );

    // a case whose table is not trained waits; the others run (here: are reused), and the
    // run says which cases wait
    let vh = out.join("vanhateren/mcgsm/model.safetensors");
    let away = out.join("vanhateren/mcgsm/model.safetensors.away");
    std::fs::rename(&vh, &away).expect("move model");
    std::fs::remove_file(out.join("inpainting/cases/vanhateren_test0.json")).expect("rm case");
    std::fs::remove_file(out.join("inpainting/inpainting.csv")).expect("rm csv");
    let (rc, err) = reproduce(&out, &["--only", "inpainting"]);
    assert_ne!(rc, 0, "{err}");
    assert!(
        err.contains("vanhateren_test0: waits for the table 'vanhateren'"),
        "{err}"
    );
    assert!(
        err.contains("bsds300_test1: finished earlier, reused"),
        "{err}"
    );
    assert!(err.contains("2 of 4 cases are finished"), "{err}");
    std::fs::rename(&away, &vh).expect("restore model");
    let (rc, err) = reproduce(&out, &["--only", "inpainting"]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("vanhateren_test0: RIDE fill"), "{err}");

    // every scored row keeps its per-tile rates; claims compare rows tile by tile; a reused
    // row without them is scored again (to the same number) and gets them
    let tiles =
        |row: &str| std::fs::read_to_string(out.join("deadleaves").join(row).join("tiles.csv"));
    assert!(tiles("ride1")
        .expect("ride1 tiles")
        .starts_with("tile,bits\n"));
    assert!(tiles("eoride2")
        .expect("ensemble tiles")
        .starts_with("tile,bits,single_bits\n"));
    assert!(report.contains("paired tile differences"), "{report}");
    let ride1_tiles = tiles("ride1").expect("tiles");
    std::fs::remove_file(out.join("deadleaves/ride1/tiles.csv")).expect("rm");
    std::fs::remove_file(out.join("deadleaves/eoride2/tiles.csv")).expect("rm");
    let (rc, err) = reproduce(&out, &["--only", "deadleaves"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("ride1: per-tile rates written (scored again"),
        "{err}"
    );
    assert_eq!(tiles("ride1").expect("tiles again"), ride1_tiles);
    assert!(tiles("eoride2").is_ok());
    // the same for a patch data set, one "tile" per test patch
    let patch_tiles = out.join("bsds300_patches/ride1/tiles.csv");
    let before = std::fs::read_to_string(&patch_tiles).expect("patch tiles");
    assert!(before.starts_with("tile,bits\n"), "{before}");
    std::fs::remove_file(&patch_tiles).expect("rm");
    let (rc, err) = reproduce(&out, &["--only", "bsds300_patches"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("ride1: per-tile rates written (scored again"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&patch_tiles).expect("again"),
        before
    );
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("report");
    let patches = report
        .split("## BSDS300, 8×8 patches")
        .nth(1)
        .expect("patch section");
    // claims pair tiles only within one test set: the 2-layer row (seed 2) was scored on
    // another draw of test patches than the 1-layer row (seed 1), so it is scored again on
    // the 1-layer row's draw
    let claim = |text: &str, report: &str, how: &str| {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("- {text}")) && l.contains(how)),
            "{text}: {how}\n{report}"
        )
    };
    claim("RIDE beats the MCGSM", patches, "paired tile differences");
    let other = "paired tile differences on the test draw of seed 1, on which RIDE, 2 layers was scored again";
    assert!(out.join("bsds300_patches/ride2/tiles_seed1.csv").is_file());
    assert!(out.join("deadleaves/ride2/tiles_seed1.csv").is_file());
    claim("2 layers beat 1", patches, other);
    let dead = report
        .split("## Dead leaves")
        .nth(1)
        .expect("dead leaves section");
    claim("RIDE beats the MCGSM", dead, "paired tile differences");
    claim("2 layers beat 1", dead, other);
    claim("the ensemble beats", dead, "paired tile differences");
    assert!(
        dead.lines()
            .any(|l| l.starts_with("| RIDE, 2 layers —")
                && l.contains("on the test draw of seed 1: ")),
        "{dead}"
    );
    let large = report.split("## BSDS300, large").nth(1).expect("BSDS300");
    claim("2 layers beat 1", large, "paired tile differences");

    // early sweeps: each chain's fill after fewer sweeps, replayed from the chain's start
    // (checked against its kept convergence row), scored in extra rows and kept apart; the
    // cases themselves are reused (early_sweeps is not part of their cache key)
    let exps = tmp.path().join("experiments");
    let status = Command::new("cp")
        .arg("-r")
        .arg("experiments")
        .arg(&exps)
        .status()
        .expect("cp");
    assert!(status.success());
    let cfg = std::fs::read_to_string(exps.join("inpainting.toml")).expect("inpainting.toml");
    let cfg = cfg.replace(
        "[scale.quick]\nhole = 9",
        "[scale.quick]\nearly_sweeps = [1]\nhole = 9",
    );
    let cfg = cfg.replace(
        "sweeps = 1\ntarget = \"crop\"",
        "sweeps = 2\ntarget = \"crop\"",
    );
    std::fs::write(exps.join("inpainting.toml"), &cfg).expect("write config");
    assert!(
        cfg.contains("early_sweeps = [1]") && cfg.contains("sweeps = 2\n"),
        "{cfg}"
    );
    let experiments = exps.to_str().expect("utf-8 path");
    let (rc, err) = reproduce(
        &out,
        &["--only", "inpainting", "--experiments", experiments],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("replayed for [1] sweeps"), "{err}");
    let recs = csv_rows(&out.join("inpainting/inpainting.csv"), INPAINT_HEADER);
    // 4 cases × (5 rows + the two chains after 1 sweep)
    assert_eq!(recs.len(), 4 * 7);
    assert_eq!(recs.iter().filter(|r| &r[8] == "1").count(), 8);
    assert_eq!(recs.iter().filter(|r| &r[8] == "2").count(), 8);
    let (rc, err) = reproduce(
        &out,
        &["--only", "inpainting", "--experiments", experiments],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("finished earlier"), "{err}");
    // the cases kept, the early rows re-read: nothing replayed
    std::fs::remove_file(out.join("inpainting/inpainting.csv")).expect("rm csv");
    let (rc, err) = reproduce(
        &out,
        &["--only", "inpainting", "--experiments", experiments],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("replayed"), "{err}");
    assert!(!err.contains("RIDE fill (2 sweeps"), "{err}");
    assert_eq!(
        csv_rows(&out.join("inpainting/inpainting.csv"), INPAINT_HEADER).len(),
        28
    );
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
    assert!(report.contains("Mean over the 4 cases"), "{report}");

    // the cache does not depend on where the results root is: a copy reuses every row,
    // including the 2-layer row that starts from the 1-layer row's model
    let copy = tmp.path().join("copy");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&out)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let (rc, err) = reproduce(&copy, &["--only", "deadleaves"]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("ride2: finished earlier, reused"), "{err}");

    // a row from another numerics version is not reused (a bug fix that changes results
    // invalidates it) and the report flags such rows
    let row_json = copy.join("deadleaves/ride1/row.json");
    let mut row: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&row_json).expect("row.json")).expect("json");
    assert_eq!(row["numerics_version"], ride::train::NUMERICS_VERSION);
    row["numerics_version"] = 1.into();
    std::fs::write(&row_json, row.to_string()).expect("write row.json");
    let (rc, err) = reproduce(&copy, &["--only", "deadleaves"]);
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("ride1: finished earlier, reused"), "{err}");
    // retrained: current again; the report reads each row's row.json
    let mut row: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&row_json).expect("row.json")).expect("json");
    assert_eq!(row["numerics_version"], ride::train::NUMERICS_VERSION);
    row["numerics_version"] = 1.into();
    std::fs::write(&row_json, row.to_string()).expect("write row.json");
    let (rc, err) = reproduce(&copy, &["--only", "deadleaves", "--report-only"]);
    assert_eq!(rc, 0, "{err}");
    let report = std::fs::read_to_string(copy.join("REPORT.md")).expect("REPORT.md");
    assert!(
        report.contains("stale: numerics version 1"),
        "the report does not flag the stale row"
    );
}

#[test]
fn unknown_scale_and_experiment_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_ride"))
        .args(["reproduce", "--scale", "huge", "--out"])
        .arg(tmp.path())
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown scale 'huge'"));
    let (rc, err) = reproduce_with(tmp.path(), tmp.path(), &["--only", "nosuch"]);
    assert_ne!(rc, 0);
    assert!(err.contains("--only nosuch"), "{err}");
}

#[test]
fn every_table_resolves_at_every_scale() {
    let dir = Path::new("experiments");
    for name in [
        "deadleaves",
        "bsds300_large",
        "bsds300_patches",
        "vanhateren",
        "textures",
    ] {
        let cfg =
            ride::harness::reproduce::table::TableConfig::load(&dir.join(format!("{name}.toml")))
                .expect("loads");
        for scale in ride::harness::reproduce::SCALES {
            let t = cfg
                .resolve(scale, dir, Path::new("results"))
                .unwrap_or_else(|e| panic!("{name} at {scale}: {e:#}"));
            assert_eq!(t.rows.len(), cfg.rows.len());
        }
    }
}

/// `--emit-slurm` (no Slurm needed): one job per row, sweep cell and inpainting experiment plus
/// the report; a row waits for the row it starts from or ensembles, a grown sweep cell for its
/// parent cell, the report for every job. `--row`/`--cell` errors are clear.
#[test]
fn emit_slurm_writes_the_dependency_graph() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, slurm) = (tmp.path().join("quick"), tmp.path().join("slurm"));
    let (rc, err) = reproduce_with(
        &tmp.path().join("no-data"),
        &out,
        &["--emit-slurm", slurm.to_str().expect("utf-8")],
    );
    assert_eq!(rc, 0, "{err}");
    let jobs: Vec<String> = std::fs::read_dir(slurm.join("jobs"))
        .expect("jobs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    // 86 units of the quick scale (table rows, sweep cells, inpainting) and the report
    assert_eq!(jobs.len(), 87, "{jobs:?}");
    let submit = std::fs::read_to_string(slurm.join("submit.sh")).expect("submit.sh");
    let line = |name: &str| -> String {
        submit
            .lines()
            .find(|l| l.contains(&format!("_{name}.sbatch")))
            .unwrap_or_else(|| panic!("no job {name}:\n{submit}"))
            .to_string()
    };
    let var = |name: &str| -> String {
        let l = line(name);
        l.split('=').next().expect("jN=").to_string()
    };
    assert!(line("deadleaves.ride2").contains(&format!("afterok:${}", var("deadleaves.ride1"))));
    assert!(
        line("bsds300_large.eoride2").contains(&format!("afterok:${}", var("bsds300_large.ride2")))
    );
    assert!(line("bsds300_large.ride2_long")
        .contains(&format!("afterok:${}", var("bsds300_large.ride2"))));
    assert!(!line("bsds300_large.ride1").contains("--dependency"));
    // sweep_vh_nb_size: cells 0..11 one layer, 12..23 grown from them, 24..26 from 13, 17, 21
    assert!(line("sweep_vh_nb_size.0012")
        .contains(&format!("afterok:${} ", var("sweep_vh_nb_size.0000"))));
    assert!(line("sweep_vh_nb_size.0024")
        .contains(&format!("afterok:${} ", var("sweep_vh_nb_size.0015"))));
    let report = line("report");
    // `$(`, `$@` and one `$jN` per job before it
    assert_eq!(report.matches('$').count() - 2, 86, "{report}");
    let script = std::fs::read_to_string(
        std::fs::read_dir(slurm.join("jobs"))
            .expect("jobs")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("_deadleaves.ride2.sbatch"))
            .expect("ride2 job"),
    )
    .expect("script");
    assert!(
        script.contains("reproduce --scale 'quick'")
            && script.contains("'--only' 'deadleaves' '--row' 'ride2'"),
        "{script}"
    );
    // single units: clear errors
    for (args, want) in [
        (vec!["--row", "ride1"], "exactly one --only"),
        (
            vec!["--only", "deadleaves", "--row", "nope"],
            "has rows mcgsm, ride1",
        ),
        (
            vec!["--only", "sweep_nb_size", "--row", "x"],
            "is not a table",
        ),
        (
            vec!["--only", "sweep_nb_size", "--cell", "99"],
            "has 4 cells",
        ),
    ] {
        let (rc, err) = reproduce_with(&tmp.path().join("no-data"), &out, &args);
        assert!(rc != 0 && err.contains(want), "{args:?}: {err}");
    }
    // a grown cell before its parent: a clear error
    let (rc, err) = reproduce_with(
        &tmp.path().join("no-data"),
        &out,
        &["--only", "sweep_vh_nb_size", "--cell", "12"],
    );
    assert!(
        rc != 0 && err.contains("grows from sweep cell 1/27, which has not finished"),
        "{err}"
    );
}
