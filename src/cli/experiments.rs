//! `ride train`, `ride sweep` and `ride reproduce`: the experiments.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Arguments of `ride train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Continue from OUT/checkpoint.safetensors (same config required).
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `ride train`.
pub fn train(args: TrainArgs, data_dir: &Path) -> Result<()> {
    let TrainArgs {
        config,
        resume,
        out,
        json,
    } = args;
    let cfg = ride::train::config::Experiment::load(&config)?;
    let out = out.unwrap_or_else(|| ride::train::default_out(&cfg));
    let o = ride::train::train(&cfg, data_dir, &out, resume)?;
    println!(
        "{}: {} test {:.4} ± {:.4} bit/px ({} tiles), {} parameters, trained in {:.1} s; model {}",
        o.experiment,
        o.model_kind,
        o.test.bits_per_px,
        o.test.sem,
        o.test.tiles,
        o.parameters,
        o.train_seconds,
        o.model_file
    );
    if json {
        println!("{}", serde_json::to_string(&o)?);
    }
    Ok(())
}

/// Arguments of `ride sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// Cells trained at the same time.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Output folder (default results/<sweep name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only this cell (0-based; used by the Slurm array job).
    #[arg(long)]
    pub cell: Option<usize>,
    /// Only rebuild OUT/results.csv from the finished cells.
    #[arg(long)]
    pub merge: bool,
    /// Write a Slurm array job script (one task per cell) and a merge step into DIR.
    #[arg(long)]
    pub emit_slurm: Option<PathBuf>,
}

/// `ride sweep`.
pub fn sweep(args: SweepArgs, data_dir: &Path) -> Result<()> {
    let SweepArgs {
        config,
        workers,
        out,
        cell,
        merge,
        emit_slurm,
    } = args;
    let (sweep, base) = ride::harness::sweep::SweepConfig::load(&config)?;
    let cells = sweep.cells(&base)?;
    let out = out.unwrap_or_else(|| PathBuf::from("results").join(&sweep.name));
    if let Some(dir) = emit_slurm {
        let levels = ride::harness::sweep::levels(&cells);
        ride::harness::sweep::emit_slurm(&config, &levels, data_dir, &out, &dir)?;
        println!(
            "wrote {}/sweep.sbatch, merge.sbatch and submit.sh ({} cells)",
            dir.display(),
            cells.len()
        );
        return Ok(());
    }
    let rows = if merge {
        ride::harness::sweep::merge(&out)?
    } else if let Some(k) = cell {
        let c = cells
            .get(k)
            .with_context(|| format!("--cell {k}: the sweep has {} cells", cells.len()))?;
        vec![ride::harness::sweep::run_cell_alone(
            &cells, c, data_dir, &out,
        )?]
    } else {
        ride::harness::sweep::run(&cells, data_dir, &out, workers)?
    };
    println!(
        "{} of {} cells finished; {}",
        rows.len(),
        cells.len(),
        out.join("results.csv").display()
    );
    Ok(())
}

/// Arguments of `ride reproduce`.
#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// paper (the original sizes; the committed report), standard (reduced, hours) or quick
    /// (minutes, smoke test).
    #[arg(long, default_value = "paper")]
    pub scale: String,
    /// Folder of the experiment configs.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Results root (default: results for paper, results/<scale> otherwise).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only these experiments (repeatable).
    #[arg(long)]
    pub only: Vec<String>,
    /// Sweep cells trained at the same time.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Only rewrite REPORT.md from the existing results.
    #[arg(long)]
    pub report_only: bool,
    /// Run only this row of the table named by --only (a Slurm job of --emit-slurm).
    #[arg(long, conflicts_with_all = ["cell", "report_only", "emit_slurm"])]
    pub row: Option<String>,
    /// Run only this cell (0-based) of the sweep named by --only (a Slurm job of --emit-slurm).
    #[arg(long, conflicts_with_all = ["report_only", "emit_slurm"])]
    pub cell: Option<usize>,
    /// Write every row, sweep cell and inpainting experiment of the scale as a Slurm job into
    /// DIR (jobs/*.sbatch, with afterok dependencies, the report last) and DIR/submit.sh.
    #[arg(long, conflicts_with = "report_only")]
    pub emit_slurm: Option<PathBuf>,
}

/// `ride reproduce`.
pub fn reproduce(args: ReproduceArgs, data_dir: &Path) -> Result<()> {
    let ReproduceArgs {
        scale,
        experiments,
        out,
        only,
        workers,
        report_only,
        row,
        cell,
        emit_slurm,
    } = args;
    let out = out.unwrap_or_else(|| ride::harness::reproduce::default_out(&scale));
    let opts = ride::harness::reproduce::Options {
        experiments,
        data_dir: data_dir.to_path_buf(),
        out,
        scale,
        only,
        workers,
    };
    use ride::harness::reproduce::Unit;
    if let Some(dir) = emit_slurm {
        let n = ride::harness::reproduce::slurm::emit_slurm(&opts, &dir)?;
        println!(
            "wrote {n} Slurm jobs to {}/jobs and {}/submit.sh",
            dir.display(),
            dir.display()
        );
        return Ok(());
    }
    match (row, cell) {
        (Some(id), _) => ride::harness::reproduce::run_unit(&opts, &Unit::Row(id)),
        (None, Some(k)) => ride::harness::reproduce::run_unit(&opts, &Unit::Cell(k)),
        (None, None) if report_only => ride::harness::reproduce::report_only(&opts),
        (None, None) => ride::harness::reproduce::run(&opts),
    }
}
