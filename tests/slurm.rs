//! A tiny sweep through a REAL single-node Slurm: `ride sweep --emit-slurm` writes the array job
//! and the merge step, `submit.sh` submits them, and the merged results.csv must hold every cell
//! exactly once with a finite bit/px.
//!
//! `cargo test` never changes the machine, so this test is `#[ignore]`d there: `make test-slurm`
//! first runs `tests/slurm/start_slurm.sh` (installs slurm-wlm and munge with apt-get if needed
//! and starts the daemons; needs root), then this test with `--ignored`. Run without a Slurm,
//! it fails saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Jobs must be gone from squeue within this long after submission.
const JOB_TIMEOUT: Duration = Duration::from_secs(180);
const CELLS: usize = 3;

/// PATH with the system folders first (sbin holds slurmctld/slurmd/munged).
fn path_env() -> String {
    let sys = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{sys}:{p}"),
        _ => sys.to_string(),
    }
}

fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("PATH", path_env())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const BASE: &str = r#"
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

/// Fails unless a Slurm answers `sinfo` (`make test-slurm` starts one).
fn require_slurm() {
    let o = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .env("PATH", path_env())
        .output();
    assert!(
        o.as_ref().is_ok_and(|o| o.status.success()),
        "no Slurm answers `sinfo`: run this test with `make test-slurm`, which starts one"
    );
}

/// With fewer CPUs per node than the jobs ask for, the sbatch argument asking for what there is.
fn cpus_arg(dir: &Path) -> Option<String> {
    let cpus: usize = String::from_utf8_lossy(&run("sinfo", &["-h", "-o", "%c"], dir).stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches('+').parse().ok())
        .max()
        .unwrap_or(1);
    (cpus < 2).then(|| format!("--cpus-per-task={cpus}"))
}

/// Runs `slurm_dir/submit.sh` from `root` (it must cd to its own folder), asking for the CPUs a
/// node has where that is fewer than the jobs ask for; returns its stdout.
fn submit(slurm_dir: &Path, dir: &Path, root: &Path) -> String {
    let cpus_arg = cpus_arg(dir);
    let args: Vec<&str> = cpus_arg.iter().map(String::as_str).collect();
    let o = run(
        slurm_dir.join("submit.sh").to_str().expect("utf-8 path"),
        &args,
        root,
    );
    assert!(o.status.success(), "submit.sh: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Everything that helps explain a failure: job states, every Slurm log, the rows written.
fn diagnose(slurm_dir: &Path, out: &Path, jobs: &[String]) -> String {
    let mut s = String::new();
    for j in jobs {
        let o = run("scontrol", &["show", "job", j], slurm_dir);
        s += &format!("=== scontrol show job {j}\n{}\n", text(&o));
    }
    s += &format!(
        "=== squeue\n{}\n",
        text(&run("squeue", &["-a", "-l"], slurm_dir))
    );
    s += &format!(
        "=== sinfo\n{}\n",
        text(&run("sinfo", &["-N", "-l"], slurm_dir))
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(slurm_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        if f.extension().and_then(|x| x.to_str()) == Some("log") {
            s += &format!(
                "=== {}\n{}\n",
                f.display(),
                std::fs::read_to_string(&f).unwrap_or_else(|e| format!("(unreadable: {e})"))
            );
        }
    }
    s += &format!(
        "=== {}/rows: {:?}\n",
        out.display(),
        std::fs::read_dir(out.join("rows"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    s
}

/// Polls squeue until none of `jobs` is listed (pending, running or completing); a job waiting on
/// a dependency that can never be satisfied (a failed array task) fails at once.
fn wait_for_jobs(jobs: &[String], cwd: &Path) -> Result<(), String> {
    let t0 = Instant::now();
    let list = jobs.join(",");
    let mut last = String::new();
    while t0.elapsed() < JOB_TIMEOUT {
        let o = run("squeue", &["-h", "-j", &list, "-o", "%i %T %r"], cwd);
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        if o.status.success() {
            if stdout.trim().is_empty() {
                return Ok(());
            }
            if stdout.contains("DependencyNeverSatisfied") {
                return Err(format!("the merge step can never run:\n{stdout}"));
            }
            if stdout != last {
                eprintln!("squeue ({:.0} s):\n{stdout}", t0.elapsed().as_secs_f64());
                last = stdout;
            }
        } else if stderr.contains("Invalid job id") {
            // already purged from the controller (finished longer than MinJobAge ago)
            return Ok(());
        } else {
            eprintln!("squeue failed (retrying): {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "jobs {list} still queued after {JOB_TIMEOUT:?}: {last}"
    ))
}

#[test]
#[ignore = "needs a running Slurm: `make test-slurm` starts one and runs this test"]
fn sweep_runs_through_a_real_slurm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t_start = Instant::now();

    // 1. a running single-node Slurm (started by `make test-slurm`)
    require_slurm();
    let t_slurm = t_start.elapsed();

    // 2. a tiny sweep (3 cells of a tiny dead-leaves RIDE, well under a second each); under
    // target/tmp rather than /tmp so a multi-node setup with a shared checkout sees it too
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("base.toml"), BASE).expect("write base.toml");
    std::fs::write(
        dir.join("sweep.toml"),
        "name = \"slurm_sweep\"\nbase = \"base.toml\"\n[grid]\n\"model.hiddens\" = [[3], [4], [5]]\n",
    )
    .expect("write sweep.toml");
    let out = dir.join("out");
    let slurm_dir = dir.join("slurm");
    let o = run(
        env!("CARGO_BIN_EXE_ride"),
        &[
            "--data-dir",
            dir.to_str().expect("utf-8 path"),
            "sweep",
            "--config",
            "sweep.toml",
            "--out",
            "out",
            "--emit-slurm",
            "slurm",
        ],
        dir,
    );
    assert!(o.status.success(), "ride sweep --emit-slurm: {}", text(&o));

    // 3. submit
    let stdout = submit(&slurm_dir, dir, root);
    let id_after = |prefix: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no '{prefix}<id>' in submit.sh output: {stdout}"))
    };
    let jobs = vec![id_after("sweep array job "), id_after("merge job ")];
    eprintln!("submitted array job {} and merge job {}", jobs[0], jobs[1]);

    // 4. wait for both to leave the queue
    let t_submit = Instant::now();
    if let Err(e) = wait_for_jobs(&jobs, root) {
        let diag = diagnose(&slurm_dir, &out, &jobs);
        let _ = run("scancel", &[&jobs[0], &jobs[1]], root);
        panic!("{e}\n{diag}");
    }
    let t_jobs = t_submit.elapsed();

    // 5. every cell exactly once, finite bit/px, and the logs of every task and the merge step
    let fail = |msg: String| -> ! { panic!("{msg}\n{}", diagnose(&slurm_dir, &out, &jobs)) };
    let csv = std::fs::read_to_string(out.join("results.csv"))
        .unwrap_or_else(|e| fail(format!("no results.csv: {e}")));
    let rows: Vec<ride::harness::sweep::Row> = csv::Reader::from_reader(csv.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(format!("bad results.csv ({e}):\n{csv}")));
    let indices: Vec<usize> = rows.iter().map(|r| r.index).collect();
    if indices != (0..CELLS).collect::<Vec<_>>() {
        fail(format!("rows {indices:?}, want 0..{CELLS}:\n{csv}"));
    }
    for r in &rows {
        if !(r.bits_per_px.is_finite() && r.bits_per_px > 0.0 && r.bits_per_px < 16.0) {
            fail(format!(
                "cell {}: bits/px {}:\n{csv}",
                r.index, r.bits_per_px
            ));
        }
    }
    for h in [3, 4, 5] {
        let want = format!("model.hiddens=[{h}] seed=3");
        if rows.iter().filter(|r| r.cell == want).count() != 1 {
            fail(format!("'{want}' not exactly once:\n{csv}"));
        }
    }
    let mut logs: Vec<String> = (0..CELLS)
        .map(|k| format!("slurm-{}_{k}.log", jobs[0]))
        .collect();
    logs.push(format!("slurm-merge-{}.log", jobs[1]));
    for l in &logs {
        if !slurm_dir.join(l).is_file() {
            fail(format!("missing Slurm log {l}"));
        }
    }
    let merge_log = std::fs::read_to_string(slurm_dir.join(&logs[CELLS])).unwrap_or_default();
    if !merge_log.contains(&format!("{CELLS} of {CELLS} cells finished")) {
        fail(format!("merge log: {merge_log}"));
    }
    eprintln!(
        "slurm sweep: start_slurm.sh {:.1} s, jobs {:.1} s, total {:.1} s\n{csv}",
        t_slurm.as_secs_f64(),
        t_jobs.as_secs_f64(),
        t_start.elapsed().as_secs_f64()
    );
}

/// `ride reproduce --emit-slurm` at the quick scale through a REAL Slurm: the dead-leaves table
/// (a 2-layer row grown from the 1-layer row, an ensemble of it) and a sweep, one job per row and
/// cell with afterok dependencies, the report last. Every row and cell must come out once, with
/// the table, the ablation figure and REPORT.md written by the last job.
#[test]
#[ignore = "needs a running Slurm: `make test-slurm` starts one and runs this test"]
fn reproduce_dag_runs_through_a_real_slurm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    require_slurm();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let dir = tmp.path();
    let (out, slurm_dir) = (dir.join("quick"), dir.join("slurm"));
    let o = run(
        env!("CARGO_BIN_EXE_ride"),
        &[
            "--data-dir",
            dir.join("no-data").to_str().expect("utf-8 path"),
            "reproduce",
            "--scale",
            "quick",
            "--out",
            out.to_str().expect("utf-8 path"),
            "--only",
            "deadleaves",
            "--only",
            "sweep_nb_size",
            "--emit-slurm",
            slurm_dir.to_str().expect("utf-8 path"),
        ],
        root,
    );
    assert!(
        o.status.success(),
        "ride reproduce --emit-slurm: {}",
        text(&o)
    );
    let stdout = submit(&slurm_dir, dir, root);
    // "job <id>: <name>" per job: 5 table rows, 4 sweep cells, the report
    let jobs: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("job "))
        .filter_map(|l| l.split_once(": "))
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect();
    assert_eq!(jobs.len(), 10, "{stdout}");
    let ids: Vec<String> = jobs.iter().map(|j| j.0.clone()).collect();
    let t0 = Instant::now();
    let logs = slurm_dir.join("logs");
    let fail = |msg: String| -> ! {
        let _ = run(
            "scancel",
            &ids.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            root,
        );
        let mut all = String::new();
        for e in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            all += &format!(
                "=== {}\n{}\n",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            );
        }
        panic!("{msg}\n{all}")
    };
    if let Err(e) = wait_for_jobs(&ids, root) {
        fail(e);
    }
    // the 2-layer row ran after the 1-layer row it starts from
    let deps = std::fs::read_to_string(slurm_dir.join("submit.sh")).expect("submit.sh");
    assert!(
        deps.contains("--dependency=afterok:$j1 jobs/002_deadleaves.ride2.sbatch"),
        "{deps}"
    );
    for (id, name) in &jobs {
        if !logs.join(format!("{name}-{id}.log")).is_file() {
            fail(format!("no log of job {id} ({name})"));
        }
    }
    let table = std::fs::read_to_string(out.join("deadleaves/table.csv")).unwrap_or_default();
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    if rows != ["mcgsm", "ride1", "ride2", "eoride2", "ride2_more"] {
        fail(format!("deadleaves rows {rows:?}:\n{table}"));
    }
    let sweep = std::fs::read_to_string(out.join("sweep_nb_size/table.csv")).unwrap_or_default();
    if sweep.lines().count() != 1 + 4 {
        fail(format!("sweep_nb_size:\n{sweep}"));
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap_or_default();
    if !(report.contains("Dead leaves") && report.contains("## Ablations")) {
        fail(format!("REPORT.md:\n{report}"));
    }
    if !out.join("ablations/nb_size.png").is_file() {
        fail("no ablations/nb_size.png".into());
    }
    // the report job found every row and cell finished: it trained nothing
    let report_id = &jobs.last().expect("the report job").0;
    let report_log =
        std::fs::read_to_string(logs.join(format!("report-{report_id}.log"))).unwrap_or_default();
    if report_log.contains("L-BFGS") || !report_log.contains("finished earlier, reused") {
        fail(format!("the report job trained again:\n{report_log}"));
    }
    eprintln!(
        "slurm reproduce DAG: {} jobs in {:.1} s",
        jobs.len(),
        t0.elapsed().as_secs_f64()
    );
}
