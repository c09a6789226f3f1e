//! Training: the loss goes down, a killed run resumes to bit-identical parameters, and bad
//! configs / data give clear errors.

mod common;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `ride train --config CFG --out OUT` plus `extra` arguments.
fn train(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = ride();
    c.args([
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(extra);
    c.output().unwrap()
}

fn ride() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ride"));
    c.arg("--data-dir").arg(common::data_dir());
    c
}

/// A tiny dead-leaves RIDE config; `stages` full stages of a few hundred batches.
fn tiny_config(
    dir: &Path,
    name: &str,
    batches_per_stage_hint: usize,
    checkpoint_every: usize,
) -> std::path::PathBuf {
    tiny_config_with(
        dir,
        name,
        batches_per_stage_hint,
        checkpoint_every,
        "sgd",
        [0.5, 0.2, 0.1],
    )
}

fn tiny_config_with(
    dir: &Path,
    name: &str,
    batches_per_stage_hint: usize,
    checkpoint_every: usize,
    optimizer: &str,
    lrs: [f64; 3],
) -> std::path::PathBuf {
    let images = batches_per_stage_hint.max(4);
    let text = format!(
        r#"
name = "{name}"
seed = 7
[data]
kind = "deadleaves"
size = 32
train_images = {images}
test_images = 4
min_radius = 1.5
max_radius = 20.0
[model]
kind = "ride"
nb_size = 5
hiddens = [8]
components = 4
scales = 2
features = 4
whitening_samples = 20000
[training]
optimizer = "{optimizer}"
batch_size = 8
checkpoint_every = {checkpoint_every}
[[training.stages]]
patch = 8
lr = {}
[[training.stages]]
patch = 12
lr = {}
[[training.stages]]
patch = 16
lr = {}
add_layer = 6
[finetune]
cells = 3000
validation_cells = 1000
max_iter = 10
check_every = 5
[evaluation]
tile = 32
"#,
        lrs[0], lrs[1], lrs[2]
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn training_lowers_the_loss_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "tiny", 16, 0);
    let out = dir.path().join("out");
    let o = train(&cfg, &out, &["--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(out.join("train_log.csv")).unwrap();
    let bits: Vec<f64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    let k = 10.min(bits.len() / 4);
    let first = bits[..k].iter().sum::<f64>() / k as f64;
    let stage1: Vec<&str> = log
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("0,"))
        .collect();
    let last1: f64 = stage1[stage1.len() - k..]
        .iter()
        .map(|l| l.split(',').nth(4).unwrap().parse::<f64>().unwrap())
        .sum::<f64>()
        / k as f64;
    println!("first batches {first:.3} bit/px, end of stage 1 {last1:.3} bit/px");
    // progress lines (stderr is not a terminal here): batches and the L-BFGS iterations
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stage 1/3 (8×8, lr 0.5): batch 1/"), "{err}");
    assert!(
        err.contains("L-BFGS after stage 1: iteration 1/10: train "),
        "{err}"
    );
    assert!(
        last1 > first + 0.1,
        "the log-likelihood rate should rise during stage 1: {first} → {last1}"
    );
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert!(summary["test"]["bits_per_px"].as_f64().unwrap().is_finite());
    // the layer added before stage 3 is in the final model
    let m = ride::io::modelfile::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(m.layers.len(), 2);
}

/// Kill a run with SIGKILL after its first checkpoint (mid-stage, every 5 batches), resume it,
/// and compare with an uninterrupted run of the same config: bit-identical parameters.
#[test]
fn resume_after_kill_mid_stage_is_bit_identical() {
    kill_and_resume(5);
}

/// The same with checkpoints only between stages: killed after stage 1, resumed.
#[test]
fn resume_after_kill_between_stages_is_bit_identical() {
    kill_and_resume(0);
}

/// Adam's moments and step count survive a kill mid-stage: bit-identical parameters.
/// The MCGSM baseline's L-BFGS in resumable segments: killed between two segments, the rerun
/// resumes from the saved state and ends bit-identical to an uninterrupted run.
#[test]
fn segmented_lbfgs_resumes_after_kill_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("seg.toml");
    let text = r#"
name = "seg"
seed = 3
[data]
kind = "deadleaves"
size = 48
train_images = 24
test_images = 2
min_radius = 1.5
max_radius = 20.0
[model]
kind = "mcgsm"
nb_size = 7
components = 8
scales = 3
features = 8
whitening_samples = 20000
[finetune]
cells = 40000
validation_cells = 5000
max_iter = 400
check_every = 4
segment = 8
patch = 16
[evaluation]
tile = 32
"#;
    std::fs::write(&cfg, text).unwrap();
    let full = dir.path().join("full");
    let o = train(&cfg, &full, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let killed = dir.path().join("killed");
    let state = killed.join("lbfgs_state_0.json");
    let mut child = ride()
        .args(["train", "--config", cfg.to_str().unwrap()])
        .args(["--out", killed.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !state.exists() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        state.exists() && !killed.join("summary.json").exists(),
        "the run finished before it was killed: make the config longer ({err})"
    );
    let o = train(&cfg, &killed, &[]);
    let err2 = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err2}");
    assert!(
        err2.contains("resuming L-BFGS after 8 iterations"),
        "{err2}"
    );
    assert!(!state.exists(), "the state file outlives the finished run");
    let a = std::fs::read(full.join("model.safetensors")).unwrap();
    let b = std::fs::read(killed.join("model.safetensors")).unwrap();
    assert!(a == b, "resumed L-BFGS differs from the uninterrupted one");
    // more than one segment ran, and the summary counts every iteration once
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(killed.join("summary.json")).unwrap()).unwrap();
    let f: serde_json::Value =
        serde_json::from_slice(&std::fs::read(full.join("summary.json")).unwrap()).unwrap();
    let iters = f["finetune"][0]["iterations"].as_u64().unwrap();
    assert!(iters > 8, "{f}");
    assert_eq!(s["finetune"][0]["iterations"].as_u64(), Some(iters));
    assert!(
        s["finetune"][0]["earlier_seconds"].as_f64().unwrap() > 0.0,
        "{s}"
    );
}

#[test]
fn resume_after_kill_mid_stage_with_adam_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config_with(dir.path(), "adam", 48, 5, "adam", [0.01, 0.005, 0.002]);
    kill_and_resume_config(&cfg, dir.path());
}

fn kill_and_resume(checkpoint_every: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "resume", 48, checkpoint_every);
    kill_and_resume_config(&cfg, dir.path());
}

fn kill_and_resume_config(cfg: &Path, dir: &Path) {
    let cfg = cfg.to_path_buf();
    let full = dir.join("full");
    let o = train(&cfg, &full, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let killed = dir.join("killed");
    let mut child = ride()
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            killed.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !killed.join("checkpoint.safetensors").exists() && t0.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(killed.join("checkpoint.safetensors").exists());
    assert!(
        !killed.join("summary.json").exists(),
        "the run finished before it was killed: make the config longer"
    );
    let o = train(&cfg, &killed, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = std::fs::read(full.join("model.safetensors")).unwrap();
    let b = std::fs::read(killed.join("model.safetensors")).unwrap();
    let (ma, mb) = (
        ride::io::modelfile::from_safetensors(&a).unwrap(),
        ride::io::modelfile::from_safetensors(&b).unwrap(),
    );
    let bits = |m: &ride::model::ride::Ride<f32>| -> Vec<u32> {
        let mut m = m.clone();
        m.params_mut()
            .into_iter()
            .flat_map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect()
    };
    assert_eq!(
        bits(&ma),
        bits(&mb),
        "resumed run differs from the uninterrupted one"
    );
    // the summary has every stage's fine-tuning, those before the kill included
    let finetune = |d: &Path| -> Vec<(u64, f64)> {
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap();
        s["finetune"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["iterations"].as_u64().unwrap(),
                    f["train_nll_after"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert!(!finetune(&full).is_empty());
    assert_eq!(finetune(&full), finetune(&killed));
    // the training log has every batch exactly once
    let la = std::fs::read_to_string(full.join("train_log.csv")).unwrap();
    let lb = std::fs::read_to_string(killed.join("train_log.csv")).unwrap();
    let key = |l: &str| l.split(',').take(5).collect::<Vec<_>>().join(",");
    assert_eq!(
        la.lines().map(key).collect::<Vec<_>>(),
        lb.lines().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn bad_configs_and_data_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // an unknown key
    let cfg = tiny_config(dir.path(), "typo", 4, 0);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("batch_size = 8", "batch_sise = 8");
    std::fs::write(&cfg, text).unwrap();
    let o = train(&cfg, &dir.path().join("o"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("typo.toml") && err.contains("batch_sise"),
        "{err}"
    );
    // an empty image directory (BSDS300 data dir without images)
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("bsds300/images/train")).unwrap();
    std::fs::write(data.join("bsds300/iids_train.txt"), "").unwrap();
    let cfg = dir.path().join("bsds.toml");
    std::fs::write(&cfg, "name = \"b\"\n[data]\nkind = \"bsds300\"\n[model]\nkind = \"ride\"\n[[training.stages]]\npatch = 8\nlr = 0.1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ride"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.path().join("o2").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("iids_train.txt") || err.contains("no training images"),
        "{err}"
    );
    // resume without a checkpoint
    let cfg = tiny_config(dir.path(), "nockpt", 4, 0);
    let o = train(&cfg, &dir.path().join("o3"), &["--resume"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("checkpoint.safetensors"));
}

#[test]
fn nan_in_training_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path(), "nan", 8, 0);
    // a learning rate that makes the parameters overflow
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 0.2", "lr = 1e30");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    let o = train(&cfg, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("NaN/inf") && err.contains("stage 1"), "{err}");
    // the last good checkpoint (after stage 0) is still a loadable model
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert!(ride::io::modelfile::load(&out.join("checkpoint.safetensors")).is_ok());
}

/// Every dataset of the paper trains end to end from the command line (tiny smoke runs:
/// van Hateren in the log domain, a Brodatz plate, BSDS300 JPEGs, and the MCGSM baseline).
#[test]
fn every_dataset_trains_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let common = r#"
[model]
kind = "ride"
hiddens = [4]
components = 2
scales = 2
features = 2
whitening_samples = 5000
[training]
batch_size = 8
max_patches = 32
[[training.stages]]
patch = 8
lr = 0.1
[finetune]
cells = 1000
validation_cells = 200
max_iter = 5
[evaluation]
tile = 32
"#;
    let datasets = [
        ("vh", "[data]\nkind = \"vanhateren\"\ntrain_ids = [\"imk00031\"]\ntest_ids = [\"imk00074\"]\n"),
        ("brodatz", "[data]\nkind = \"brodatz\"\nplate = \"D1\"\ntrain_rows = 500\n"),
        ("bsds", "[data]\nkind = \"bsds300\"\ntrain_limit = 2\ntest_limit = 1\n"),
    ];
    for (name, data) in datasets {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, format!("name = \"{name}\"\n{data}{common}")).unwrap();
        let out = dir.path().join(name);
        let o = train(&cfg, &out, &["--json"]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap())
                .unwrap();
        assert!(
            s["test"]["bits_per_px"].as_f64().unwrap().is_finite(),
            "{name}: {s}"
        );
    }
    // the MCGSM baseline: no SLSTM, L-BFGS only
    let cfg = dir.path().join("mcgsm.toml");
    let text = format!(
        "name = \"m\"\n{}{}",
        datasets[2].1,
        common.replace("kind = \"ride\"", "kind = \"mcgsm\"\nnb_size = 9")
    );
    std::fs::write(&cfg, text).unwrap();
    let o = train(&cfg, &dir.path().join("m"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = ride::io::modelfile::load(&dir.path().join("m/model.safetensors")).unwrap();
    assert!(m.layers.is_empty() && m.mcgsm.d() == 40);
}
