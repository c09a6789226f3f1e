//! `ride reproduce --emit-slurm DIR`: every table row, sweep cell and inpainting experiment of a
//! scale as its own Slurm job, with `afterok` dependencies (a row after the row it starts from
//! or ensembles, a grown sweep cell after the cell it grows from, inpainting after the tables'
//! rows, the report after everything), and `submit.sh`, which submits them in order.
//!
//! Each job runs `ride reproduce --only NAME --row ID` or `--cell K` (one unit, see
//! [`super::run_unit`]); the last runs the whole `ride reproduce`, which finds every unit
//! finished and writes the tables, figures and `REPORT.md`.

use super::{resolve, Options};
use crate::harness::sweep::slurm_path;
use crate::io::files::write_atomic;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// One Slurm job: its name, the `ride reproduce` arguments after the common ones, and the
/// indices of the jobs it waits for.
struct Job {
    name: String,
    args: Vec<String>,
    after: Vec<usize>,
}

/// Writes `DIR/jobs/*.sbatch` and `DIR/submit.sh` for the suite (or `--only` its part) at
/// `opts.scale`; returns the number of jobs.
pub fn emit_slurm(opts: &Options, dir: &Path) -> Result<usize> {
    let r = resolve(opts)?;
    let wanted = |n: &String| opts.only.is_empty() || opts.only.contains(n);
    let mut jobs: Vec<Job> = vec![];
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut table_jobs = vec![];
    for (name, t) in r.suite.tables.iter().zip(&r.tables) {
        if !wanted(name) {
            continue;
        }
        for row in &t.rows {
            let spec = t.config.rows.iter().find(|s| s.id == row.id);
            let after = spec
                .into_iter()
                .flat_map(|s| s.init_from_row.iter().chain(&s.ensemble_of))
                .map(|d| {
                    index.get(&format!("{name}.{d}")).copied().with_context(|| {
                        format!("table '{name}', row '{}': row '{d}' comes later", row.id)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let key = format!("{name}.{}", row.id);
            index.insert(key.clone(), jobs.len());
            table_jobs.push(jobs.len());
            jobs.push(Job {
                name: key,
                args: vec![
                    "--only".into(),
                    name.clone(),
                    "--row".into(),
                    row.id.clone(),
                ],
                after,
            });
        }
    }
    for (name, cells) in r.suite.sweeps.iter().zip(&r.sweep_cells) {
        if !wanted(name) {
            continue;
        }
        let first = jobs.len();
        for c in cells {
            jobs.push(Job {
                name: format!("{name}.{:04}", c.index),
                args: vec![
                    "--only".into(),
                    name.clone(),
                    "--cell".into(),
                    c.index.to_string(),
                ],
                after: c.grown_from.map(|p| first + p).into_iter().collect(),
            });
        }
    }
    for name in r.suite.inpainting.iter().filter(|n| wanted(n)) {
        // inpainting scores the tables' models
        jobs.push(Job {
            name: name.clone(),
            args: vec!["--only".into(), name.clone()],
            after: table_jobs.clone(),
        });
    }
    jobs.push(Job {
        name: "report".into(),
        args: opts
            .only
            .iter()
            .flat_map(|o| ["--only".to_string(), o.clone()])
            .collect(),
        after: (0..jobs.len()).collect(),
    });
    write_jobs(opts, dir, &jobs)?;
    Ok(jobs.len())
}

fn write_jobs(opts: &Options, dir: &Path, jobs: &[Job]) -> Result<()> {
    let exe = std::env::current_exe().context("locating the ride binary")?;
    let common = format!(
        "'{}' --data-dir '{}' reproduce --scale '{}' --experiments '{}' --out '{}'",
        slurm_path(&exe)?,
        slurm_path(&opts.data_dir)?,
        opts.scale,
        slurm_path(&opts.experiments)?,
        slurm_path(&opts.out)?,
    );
    let logs = slurm_path(&dir.join("logs"))?;
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {logs}"))?;
    let mut submit = "#!/bin/bash\n# Submits every job of the reproduction in order, each after the jobs it needs (afterok).\n# Arguments are passed to every sbatch call, e.g. ./submit.sh --partition=short\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\n".to_string();
    for (k, job) in jobs.iter().enumerate() {
        let file = format!("jobs/{k:03}_{}.sbatch", job.name);
        let script = format!(
            "#!/bin/bash\n#SBATCH --job-name=ride-{}\n#SBATCH --cpus-per-task=2\n#SBATCH --output={logs}/{}-%j.log\nset -euo pipefail\n{common} {}\n",
            job.name,
            job.name,
            job.args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
        );
        write_atomic(&dir.join(&file), script.as_bytes())?;
        let dep = if job.after.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = job.after.iter().map(|d| format!("$j{d}")).collect();
            format!(" --dependency=afterok:{}", ids.join(":"))
        };
        let _ = write!(
            submit,
            "j{k}=$(sbatch --parsable \"$@\"{dep} {file})\nj{k}=${{j{k}%%;*}}\necho \"job $j{k}: {}\"\n",
            job.name
        );
    }
    let p = dir.join("submit.sh");
    write_atomic(&p, submit.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
