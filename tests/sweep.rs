//! Sweeps: a SIGKILLed sweep restarted ends with every row exactly once; Slurm emission;
//! single-cell runs and the merge step.

mod common;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn ride() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ride"));
    c.arg("--data-dir").arg(common::data_dir());
    c
}

fn write_sweep(dir: &Path) -> std::path::PathBuf {
    let base = r#"
name = "base"
seed = 3
[data]
kind = "deadleaves"
size = 32
train_images = 24
test_images = 2
min_radius = 1.5
max_radius = 20.0
[model]
kind = "ride"
hiddens = [4]
components = 2
scales = 2
features = 2
whitening_samples = 5000
[training]
batch_size = 8
checkpoint_every = 1
[[training.stages]]
patch = 8
lr = 0.1
[[training.stages]]
patch = 12
lr = 0.05
[finetune]
cells = 1000
validation_cells = 200
max_iter = 5
[evaluation]
tile = 32
"#;
    std::fs::write(dir.join("base.toml"), base).unwrap();
    let sweep = "name = \"tiny_sweep\"\nbase = \"base.toml\"\n[grid]\n\"model.hiddens\" = [[4], [6]]\n\"training.batch_size\" = [8, 16]\n";
    let p = dir.join("sweep.toml");
    std::fs::write(&p, sweep).unwrap();
    p
}

fn rows(out: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn killed_sweep_restarted_has_every_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_sweep(dir.path());
    let out = dir.path().join("out");
    let args = [
        "sweep",
        "--workers",
        "2",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = ride()
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while rows(&out).is_empty() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = rows(&out);
    assert!(
        !before.is_empty() && before.len() < 4,
        "kill landed after {before:?}"
    );
    let o = ride().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(rows(&out), vec![0, 1, 2, 3]);
    // a finished cell keeps its model, not the checkpoint it resumed from
    for i in 0..4 {
        let cell = out.join("cells").join(format!("{i:04}"));
        assert!(cell.join("model.safetensors").is_file());
        assert!(!cell.join("checkpoint.safetensors").exists(), "cell {i}");
    }
    // each cell it trains is announced with the sweep's ETA from the cells finished before;
    // the finished ones are not
    assert!(
        err.contains(&format!("starting: {} of 4 finished; ETA ", before.len())),
        "{err}"
    );
    for i in &before {
        let start = format!("sweep cell {}/4 (", i + 1);
        assert!(
            !err.lines()
                .any(|l| l.starts_with(&start) && l.contains("starting")),
            "{err}"
        );
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.starts_with("index,cell,seed,model,bits_per_px,sem,tiles,parameters,train_seconds,eval_seconds,git_commit"));
    assert!(
        csv.contains("model.hiddens=[6] training.batch_size=16 seed=3"),
        "{csv}"
    );
}

#[test]
fn slurm_emission_single_cells_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_sweep(dir.path());
    let out = dir.path().join("out");
    let slurm = dir.path().join("slurm");
    let o = ride()
        .args([
            "sweep",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--emit-slurm",
            slurm.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let array = std::fs::read_to_string(slurm.join("sweep.sbatch")).unwrap();
    assert!(
        array.contains("#SBATCH --array=0-3") && array.contains("--cell \"$SLURM_ARRAY_TASK_ID\""),
        "{array}"
    );
    assert!(std::fs::read_to_string(slurm.join("merge.sbatch"))
        .unwrap()
        .contains("--merge"));
    assert!(std::fs::read_to_string(slurm.join("submit.sh"))
        .unwrap()
        .contains("--dependency=afterok"));
    // what each array task and the merge step run
    for k in ["2", "0"] {
        let o = ride()
            .args([
                "sweep",
                "--config",
                cfg.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--cell",
                k,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = ride()
        .args([
            "sweep",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--merge",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(rows(&out), vec![0, 2]);
    // a bad grid key is a clear error
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"b\"\nbase = \"base.toml\"\n[grid]\n\"model.hidens\" = [[4]]\n",
    )
    .unwrap();
    let o = ride()
        .args([
            "sweep",
            "--config",
            dir.path().join("bad.toml").to_str().unwrap(),
            "--merge",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hidens"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Grown cells (`[grow]`): deeper models start from the trained shallower cell with the same
/// other grid values and seed, run after it, and are emitted for Slurm one level at a time;
/// `exclude` drops cells; a grown cell run before its parent is a clear error.
#[test]
fn grown_cells_start_from_the_shallower_model() {
    let dir = tempfile::tempdir().unwrap();
    write_sweep(dir.path());
    let sweep = r#"
name = "grow_sweep"
base = "base.toml"
seeds = [1, 2]
exclude = [{ "training.batch_size" = 16, "model.hiddens" = [4, 3] }]
[grid]
"model.hiddens" = [[4], [4, 3]]
"training.batch_size" = [8, 16]
[grow]
stages = [{ patch = 12, lr = 0.05 }]
"#;
    let cfg = dir.path().join("grow.toml");
    std::fs::write(&cfg, sweep).unwrap();
    let (s, base) = ride::harness::sweep::SweepConfig::load(&cfg).unwrap();
    let cells = s.cells(&base).unwrap();
    // (hiddens, batch) = ([4], 8), ([4], 16), ([4,3], 8) × 2 seeds; ([4,3], 16) excluded
    assert_eq!(cells.len(), 6);
    let grown: Vec<_> = cells.iter().filter(|c| c.grown_from.is_some()).collect();
    assert_eq!(grown.len(), 2);
    for c in &grown {
        let p = &cells[c.grown_from.unwrap()];
        assert_eq!(p.seed, c.seed);
        assert_eq!(p.config.model.hiddens, vec![4]);
        assert_eq!(c.config.model.hiddens, vec![4], "the model it starts from");
        assert_eq!(c.config.training.stages.len(), 1);
        assert_eq!(c.config.training.stages[0].add_layer, Some(3));
    }
    assert_eq!(ride::harness::sweep::levels(&cells).len(), 2);
    let out = dir.path().join("out");
    let run = |args: &[&str]| {
        ride()
            .args(["sweep", "--config", cfg.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    // a grown cell before the cell it grows from: a clear error, nothing trained
    let k = grown[0].index.to_string();
    let o = run(&["--cell", &k]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("has not finished"),
        "{err}"
    );
    // Slurm: one array job per level, the second after the first
    let slurm = dir.path().join("slurm");
    let o = run(&["--emit-slurm", slurm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let submit = std::fs::read_to_string(slurm.join("submit.sh")).unwrap();
    let level1: Vec<String> = grown.iter().map(|c| c.index.to_string()).collect();
    assert!(
        submit.contains(&format!("--array={} sweep.sbatch", level1.join(",")))
            && submit.matches("--dependency=afterok").count() == 2
            && submit.contains("dep=(--dependency=afterok:$jid)"),
        "{submit}"
    );
    // a cell another process is training (it holds the cell's lock) is left to it, and so is
    // the cell grown from it; the others are trained, and the run succeeds
    let parent = grown[0].grown_from.unwrap();
    let claim =
        ride::io::run_lock::RunLock::try_acquire(&out.join("cells").join(format!("{parent:04}")))
            .unwrap();
    assert!(matches!(claim, ride::io::run_lock::Claim::Held(_)));
    let o = run(&["--cell", &parent.to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("is training it"),
        "{err}"
    );
    let o = run(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let holder = format!("another process (pid {}", std::process::id());
    assert!(
        err.contains(&format!(
            "sweep cell {}/6 ({}): {holder}",
            parent + 1,
            cells[parent].id()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "sweep cell {}/6 ({}): grows from sweep cell {}/6, which has not finished; skipped here",
            grown[0].index + 1,
            grown[0].id(),
            parent + 1
        )),
        "{err}"
    );
    assert!(
        err.contains("2 of 6 sweep cells left to other processes"),
        "{err}"
    );
    let expect: Vec<usize> = (0..6)
        .filter(|&i| i != parent && i != grown[0].index)
        .collect();
    assert_eq!(rows(&out), expect);
    drop(claim);
    // the whole sweep: every cell once, the grown models have both layers and record where
    // they started from
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&out), (0..6).collect::<Vec<_>>());
    for c in &grown {
        let cell_dir = out.join("cells").join(format!("{:04}", c.index));
        let m = ride::io::modelfile::load(&cell_dir.join("model.safetensors")).unwrap();
        assert_eq!(
            m.layers.iter().map(|l| l.h()).collect::<Vec<_>>(),
            vec![4, 3]
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cell_dir.join("summary.json")).unwrap()).unwrap();
        let from = summary["config"]["model"]["init_from"].as_str().unwrap();
        assert!(
            from.ends_with(&format!(
                "cells/{:04}/model.safetensors",
                c.grown_from.unwrap()
            )),
            "{from}"
        );
    }
    // a rerun reuses every cell
    let o = run(&[]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("training it again"));
}

/// Every committed experiment and sweep config parses and validates.
#[test]
fn committed_configs_are_valid() {
    let mut n = 0;
    for e in std::fs::read_dir("experiments").unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".toml") {
            continue;
        }
        let raw: toml::Table = toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        if name.starts_with("sweep_") {
            let (s, base) = ride::harness::sweep::SweepConfig::load(&p).unwrap();
            assert!(!s.cells(&base).unwrap().is_empty(), "{name}");
            for scale in s.scale.keys() {
                let cells = s.cells_at_scale(&base, Some(scale));
                assert!(!cells.unwrap().is_empty(), "{name} at {scale}");
            }
        } else if name == "reproduce.toml" {
            let suite: ride::harness::reproduce::Suite =
                toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let all = suite
                .tables
                .iter()
                .chain(&suite.sweeps)
                .chain(&suite.inpainting);
            for n in all {
                assert!(
                    Path::new("experiments").join(format!("{n}.toml")).is_file(),
                    "{n}"
                );
            }
        } else if raw.contains_key("rows") {
            let t = ride::harness::reproduce::table::TableConfig::load(&p).unwrap();
            for scale in ride::harness::reproduce::SCALES {
                t.resolve(scale, Path::new("experiments"), Path::new("results"))
                    .unwrap_or_else(|e| panic!("{name} at {scale}: {e:#}"));
            }
        } else if raw.contains_key("datasets") {
            // the codec comparison: its models are committed results
            let c = ride::harness::codec_compare::load_config(&p)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            for m in &c.models {
                assert!(m.path.is_file(), "{name}: {}", m.path.display());
            }
        } else if raw.contains_key("cases") {
            for scale in ride::harness::reproduce::SCALES {
                ride::harness::reproduce::run_inpainting::load(&p, scale)
                    .unwrap_or_else(|e| panic!("{name} at {scale}: {e:#}"));
            }
        } else {
            ride::train::config::Experiment::load(&p).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        n += 1;
    }
    assert!(n >= 8, "{n} configs");
}
