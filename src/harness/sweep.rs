//! Hyperparameter sweeps (`ride sweep`): a grid of overrides on a base experiment config, one
//! training run per cell, each finished cell recorded atomically as its own row file, the CSV
//! rebuilt from the row files. A rerun skips finished cells (and resumes a killed cell from its
//! checkpoint), so a sweep killed with SIGKILL and restarted ends with every row exactly once.
//! `--emit-slurm` writes a Slurm array job (one task per cell) and a merge step.

use crate::io::files::write_atomic;
use crate::train;
use crate::train::config::Experiment;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub name: String,
    /// base experiment config (relative to the sweep file's folder)
    pub base: PathBuf,
    /// seeds to repeat every cell with (default: the base config's seed)
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// dotted config key → list of values, e.g. `"model.nb_size" = [3, 5, 7, 9]`
    pub grid: toml::Table,
    /// dotted config key → value applied to every cell (before the grid values)
    #[serde(default)]
    pub set: toml::Table,
    /// per scale (`quick`, `standard`, `paper`): dotted overrides applied after `set`, used by
    /// `ride reproduce --scale`; without a scale the file runs as written
    #[serde(default)]
    pub scale: std::collections::BTreeMap<String, toml::Table>,
    /// how `ride reproduce` plots the sweep (bits/px against one grid key)
    pub plot: Option<SweepPlot>,
}

/// Plot of a sweep: x = the grid key's value (or the length / first element of a list value),
/// one series per sweep; sweeps with the same `figure` share one figure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPlot {
    pub figure: String,
    pub x: String,
    #[serde(default)]
    pub x_of: XOf,
    pub x_label: String,
    pub series: String,
    #[serde(default)]
    pub log_x: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XOf {
    #[default]
    Value,
    Len,
    First,
}

impl SweepPlot {
    /// The x coordinate of a cell, from its overrides.
    pub fn x_value(&self, overrides: &[(String, toml::Value)]) -> Option<f64> {
        let v = &overrides.iter().find(|(k, _)| *k == self.x)?.1;
        let num = |v: &toml::Value| v.as_integer().map(|i| i as f64).or_else(|| v.as_float());
        match self.x_of {
            XOf::Value => num(v),
            XOf::Len => v.as_array().map(|a| a.len() as f64),
            XOf::First => v.as_array().and_then(|a| a.first()).and_then(num),
        }
    }
}

/// One cell of the grid.
#[derive(Clone, Debug)]
pub struct Cell {
    pub index: usize,
    /// (dotted key, value) overrides, in key order
    pub overrides: Vec<(String, toml::Value)>,
    pub seed: u64,
    pub config: Experiment,
}

impl Cell {
    pub fn id(&self) -> String {
        let mut parts: Vec<String> = self
            .overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("seed={}", self.seed));
        parts.join(" ")
    }
}

/// A finished cell: one CSV row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub index: usize,
    pub cell: String,
    pub seed: u64,
    pub model: String,
    pub bits_per_px: f64,
    pub sem: f64,
    pub tiles: usize,
    pub parameters: usize,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub git_commit: String,
    /// hash of the cell's config and the numerics version it was trained under: a finished
    /// cell is reused only while both match
    #[serde(default)]
    pub config_hash: String,
    #[serde(default = "numerics_v1")]
    pub numerics_version: u32,
}

fn numerics_v1() -> u32 {
    1
}

pub fn set_dotted(root: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().context("empty grid key")?;
    let mut t = root;
    for p in parts {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("grid key '{key}': '{p}' is not a table"))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

impl SweepConfig {
    pub fn load(path: &Path) -> Result<(Self, toml::Table)> {
        let text = crate::limits::read_config(path)?;
        let s: SweepConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        crate::train::config::check_name("name", &s.name)
            .with_context(|| format!("{}: invalid sweep config", path.display()))?;
        let base_path = path.parent().unwrap_or(Path::new(".")).join(&s.base);
        let base_text = crate::limits::read_config(&base_path)
            .with_context(|| format!("{}: its base config", path.display()))?;
        let base: toml::Table = toml::from_str(&base_text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", base_path.display()))?;
        Ok((s, base))
    }

    /// The cartesian product of the grid (keys sorted) × seeds, as validated configs.
    pub fn cells(&self, base: &toml::Table) -> Result<Vec<Cell>> {
        self.cells_at_scale(base, None)
    }

    /// [`Self::cells`] with the overrides of `scale` (an error if the file has none for it).
    pub fn cells_at_scale(&self, base: &toml::Table, scale: Option<&str>) -> Result<Vec<Cell>> {
        let scale_set = match scale {
            None => toml::Table::new(),
            Some(s) => self
                .scale
                .get(s)
                .cloned()
                .with_context(|| format!("sweep '{}' has no [scale.{s}] section", self.name))?,
        };
        let mut keys: Vec<&String> = self.grid.keys().collect();
        keys.sort();
        let mut seen = std::collections::HashSet::new();
        if let Some(s) = self.seeds.iter().find(|s| !seen.insert(**s)) {
            bail!("sweep '{}': seed {s} is listed twice in `seeds`", self.name);
        }
        for k in &keys {
            if let Some(a) = self.grid[*k].as_array() {
                let mut seen: Vec<&toml::Value> = vec![];
                for v in a {
                    if seen.contains(&v) {
                        bail!("sweep '{}': grid '{k}' lists {v} twice", self.name);
                    }
                    seen.push(v);
                }
            }
        }
        if self.grid.contains_key("seed") {
            bail!(
                "sweep '{}': put seeds in `seeds = [...]`, not in the grid",
                self.name
            );
        }
        // the size of the product first: nothing is built for an absurd grid
        let mut n_cells = self.seeds.len().max(1);
        for k in &keys {
            let n = self.grid[*k].as_array().map_or(1, |a| a.len().max(1));
            n_cells = n_cells.saturating_mul(n);
        }
        crate::limits::check(
            &format!("cells of sweep '{}' (grid × seeds)", self.name),
            n_cells,
            1,
            crate::limits::MAX_SWEEP_CELLS,
        )?;
        let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
        for k in keys {
            let values = self.grid[k]
                .as_array()
                .with_context(|| format!("sweep grid '{k}' must be a list of values"))?;
            if values.is_empty() {
                bail!("sweep grid '{k}' has no values");
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values
                        .iter()
                        .map(move |v| [c.clone(), vec![(k.clone(), v.clone())]].concat())
                })
                .collect();
        }
        let base_seed = match base.get("seed") {
            None => 1,
            Some(v) => v
                .as_integer()
                .and_then(|s| u64::try_from(s).ok())
                .with_context(|| {
                    format!("the base config's seed = {v} is not a non-negative integer")
                })?,
        };
        let seeds = if self.seeds.is_empty() {
            vec![base_seed]
        } else {
            self.seeds.clone()
        };
        let mut cells = vec![];
        for overrides in combos {
            for &seed in &seeds {
                let index = cells.len();
                let mut t = base.clone();
                for (k, v) in self
                    .set
                    .iter()
                    .chain(scale_set.iter())
                    .chain(overrides.iter().map(|(k, v)| (k, v)))
                {
                    set_dotted(&mut t, k, v.clone())?;
                }
                t.insert("seed".into(), toml::Value::Integer(seed as i64));
                t.insert(
                    "name".into(),
                    toml::Value::String(format!("{}_{index:03}", self.name)),
                );
                let config: Experiment = t
                    .clone()
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("sweep cell {index}: {e}"))?;
                config
                    .validate()
                    .with_context(|| format!("sweep cell {index}"))?;
                cells.push(Cell {
                    index,
                    overrides: overrides.clone(),
                    seed,
                    config,
                });
            }
        }
        Ok(cells)
    }
}

fn row_path(out: &Path, index: usize) -> PathBuf {
    out.join("rows").join(format!("{index:04}.json"))
}

/// Runs one cell (resuming its checkpoint if a previous attempt was killed) and records its row.
pub fn run_cell(cell: &Cell, data_dir: &Path, out: &Path) -> Result<Row> {
    let hash = train::config_hash(&cell.config);
    if let Ok(text) = std::fs::read_to_string(row_path(out, cell.index)) {
        let row: Row = serde_json::from_str(&text).with_context(|| {
            format!("{}: corrupt row file", row_path(out, cell.index).display())
        })?;
        if row.config_hash == hash && row.numerics_version == train::NUMERICS_VERSION {
            return Ok(row);
        }
        eprintln!(
            "sweep cell {}: its row is from another config or numerics version; training it again",
            cell.index
        );
    }
    let dir = out.join("cells").join(format!("{:04}", cell.index));
    let resume = train::can_resume(&cell.config, &dir);
    let o = train::train(&cell.config, data_dir, &dir, resume)
        .with_context(|| format!("sweep cell {} ({})", cell.index, cell.id()))?;
    let row = Row {
        index: cell.index,
        cell: cell.id(),
        seed: cell.seed,
        model: o.model_kind,
        bits_per_px: o.test.bits_per_px,
        sem: o.test.sem,
        tiles: o.test.tiles,
        parameters: o.parameters,
        train_seconds: o.train_seconds,
        eval_seconds: o.eval_seconds,
        git_commit: o.git_commit,
        config_hash: hash,
        numerics_version: train::NUMERICS_VERSION,
    };
    std::fs::create_dir_all(out.join("rows"))
        .with_context(|| format!("cannot create {}", out.join("rows").display()))?;
    write_atomic(
        &row_path(out, cell.index),
        serde_json::to_string(&row)?.as_bytes(),
    )?;
    Ok(row)
}

/// Rebuilds `out/results.csv` from the row files (one row per finished cell, by index).
pub fn merge(out: &Path) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = vec![];
    if let Ok(entries) = std::fs::read_dir(out.join("rows")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("json") {
                let text = std::fs::read_to_string(&p)?;
                rows.push(
                    serde_json::from_str(&text)
                        .with_context(|| format!("bad row file {}", p.display()))?,
                );
            }
        }
    }
    rows.sort_by_key(|r| r.index);
    let mut w = csv::Writer::from_writer(vec![]);
    for r in &rows {
        w.serialize(r)?;
    }
    write_atomic(
        &out.join("results.csv"),
        &w.into_inner().context("writing CSV")?,
    )?;
    Ok(rows)
}

/// Runs every unfinished cell with `workers` cells at a time, merging after each.
pub fn run(cells: &[Cell], data_dir: &Path, out: &Path, workers: usize) -> Result<Vec<Row>> {
    crate::limits::check("--workers", workers, 1, crate::limits::MAX_WORKERS)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let merge_lock = std::sync::Mutex::new(());
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(cell) = cells.get(k) else {
                            return Ok(());
                        };
                        let row = run_cell(cell, data_dir, out)?;
                        let _guard = merge_lock
                            .lock()
                            .map_err(|_| anyhow::anyhow!("merge lock poisoned"))?;
                        merge(out)?;
                        eprintln!(
                            "sweep cell {}/{} ({}): {:.4} bit/px",
                            cell.index + 1,
                            cells.len(),
                            row.cell,
                            row.bits_per_px
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))??;
        }
        Ok(())
    })?;
    merge(out)
}

/// Writes a Slurm array job (one task per cell) and its merge step into `dir`.
pub fn emit_slurm(
    config: &Path,
    cells: usize,
    data_dir: &Path,
    out: &Path,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the ride binary")?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // the paths go into shell scripts and #SBATCH lines: only plain characters are allowed
    let safe = |p: &Path| -> Result<String> {
        let s = abs(p).to_str().map(str::to_string).with_context(|| {
            format!("{}: not UTF-8, cannot go into a Slurm script", p.display())
        })?;
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=,:@".contains(c))
        {
            bail!("{s}: only letters, digits and /._-+=,:@ can go into a Slurm script (no spaces, quotes or shell characters)");
        }
        Ok(s)
    };
    let common = format!(
        "'{}' --data-dir '{}' sweep --config '{}' --out '{}'",
        safe(&exe)?,
        safe(data_dir)?,
        safe(config)?,
        safe(out)?
    );
    safe(dir)?;
    let array = format!(
        "#!/bin/bash\n#SBATCH --job-name=ride-sweep\n#SBATCH --array=0-{}\n#SBATCH --cpus-per-task=2\n#SBATCH --output={}/slurm-%A_%a.log\nset -euo pipefail\n{common} --cell \"$SLURM_ARRAY_TASK_ID\"\n",
        cells.saturating_sub(1),
        abs(dir).display()
    );
    let merge = format!("#!/bin/bash\n#SBATCH --job-name=ride-sweep-merge\n#SBATCH --output={}/slurm-merge-%j.log\nset -euo pipefail\n{common} --merge\n", abs(dir).display());
    // Extra arguments go to both sbatch calls (they override the #SBATCH lines), e.g.
    // `./submit.sh --partition=short`; the job ids are printed for squeue/scancel.
    let submit = "#!/bin/bash\n# Submits the array job, then the merge step once every task has finished.\n# Arguments are passed to both sbatch calls, e.g. ./submit.sh --partition=short\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\njid=$(sbatch --parsable \"$@\" sweep.sbatch)\njid=${jid%%;*}\necho \"sweep array job $jid\"\nmid=$(sbatch --parsable \"$@\" --dependency=afterok:$jid merge.sbatch)\necho \"merge job ${mid%%;*}\"\n";
    for (name, text) in [
        ("sweep.sbatch", array),
        ("merge.sbatch", merge),
        ("submit.sh", submit.to_string()),
    ] {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}
