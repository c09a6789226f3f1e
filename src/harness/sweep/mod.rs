//! Hyperparameter sweeps (`ride sweep`): a grid of overrides on a base experiment config, one
//! training run per cell, each finished cell recorded atomically as its own row file, the CSV
//! rebuilt from the row files. A rerun skips finished cells (and resumes a killed cell from its
//! checkpoint), so a sweep killed with SIGKILL and restarted ends with every row exactly once.
//! `--emit-slurm` writes a Slurm array job (one task per cell) and a merge step.
//!
//! Files: this one (the config and its cells), `grow.rs` (deeper cells grown from shallower
//! ones), `run.rs` (running cells, the row files), `slurm.rs` (the Slurm scripts).

mod grow;
mod run;
mod slurm;

pub use grow::levels;
use grow::{grow_config, link_grown};
pub use run::{finished_rows, merge, run, run_cell_alone};
pub use slurm::{emit_slurm, slurm_path};

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
    /// cells left out of the grid: a cell whose grid values match every entry of one of these
    /// tables (grid key → value) is dropped
    #[serde(default)]
    pub exclude: Vec<toml::Table>,
    /// deeper models grown from shallower ones, as the original did (see [`Grow`])
    pub grow: Option<Grow>,
    /// how `ride reproduce` plots the sweep (bits/px against one grid key)
    pub plot: Option<SweepPlot>,
    /// further figures of the same cells (`[[plots]]`)
    #[serde(default)]
    pub plots: Vec<SweepPlot>,
}

/// With `[grow]`, a cell whose `model.hiddens` has L > 1 layers is not trained from scratch:
/// it starts from the trained model of the cell with the first L − 1 of those layers (same
/// other grid values, same seed), adds the last layer in the first of `stages` and trains on
/// through `stages` (the original code grew 2- and 3-layer models from 1-layer ones this way).
/// A scale may replace the stages with `"grow.stages" = [...]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grow {
    pub stages: toml::Value,
}

/// The grid key that growing reads.
const HIDDENS: &str = "model.hiddens";

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
    /// the series' label; with `series_by`, `{}` in it is replaced by that key's value and
    /// `{s}` by "s" unless that value is 1 ("RIDE, {} layer{s}" → "RIDE, 1 layer", "…, 2 layers")
    pub series: String,
    /// one series per value of this grid key (transformed by `series_of`)
    pub series_by: Option<String>,
    #[serde(default)]
    pub series_of: XOf,
    /// only the cells whose grid values match all of these (grid key → value)
    #[serde(default)]
    pub filter: toml::Table,
    #[serde(default)]
    pub log_x: bool,
    /// the paper's claims about this figure, checked in the report at every x both series
    /// have (`better` and `worse` are series labels)
    #[serde(default)]
    pub claims: Vec<crate::harness::reproduce::table::Claim>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XOf {
    #[default]
    Value,
    Len,
    First,
}

impl XOf {
    /// A grid value as a number: itself, or the length / first element of a list.
    pub fn of(self, v: &toml::Value) -> Option<f64> {
        let num = |v: &toml::Value| v.as_integer().map(|i| i as f64).or_else(|| v.as_float());
        match self {
            XOf::Value => num(v),
            XOf::Len => v.as_array().map(|a| a.len() as f64),
            XOf::First => v.as_array().and_then(|a| a.first()).and_then(num),
        }
    }
}

/// The value of grid key `key` in a cell's overrides.
fn grid_value<'a>(overrides: &'a [(String, toml::Value)], key: &str) -> Option<&'a toml::Value> {
    overrides.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Whether a cell's overrides match every entry of `t` (grid key → value).
fn matches(overrides: &[(String, toml::Value)], t: &toml::Table) -> bool {
    t.iter().all(|(k, v)| grid_value(overrides, k) == Some(v))
}

impl SweepPlot {
    /// The x coordinate of a cell, from its overrides.
    pub fn x_value(&self, overrides: &[(String, toml::Value)]) -> Option<f64> {
        self.x_of.of(grid_value(overrides, &self.x)?)
    }

    /// Whether the plot shows this cell (its `filter`).
    pub fn shows(&self, overrides: &[(String, toml::Value)]) -> bool {
        matches(overrides, &self.filter)
    }

    /// The label of the series a cell belongs to.
    pub fn series_label(&self, overrides: &[(String, toml::Value)]) -> String {
        match &self.series_by {
            None => self.series.clone(),
            Some(key) => {
                let v = grid_value(overrides, key).and_then(|v| self.series_of.of(v));
                let plural = if v == Some(1.0) { "" } else { "s" };
                let v = v.map_or("?".to_string(), |v| format!("{v}"));
                self.series.replace("{}", &v).replace("{s}", plural)
            }
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
    /// with `[grow]`: the cell whose trained model this one starts from
    pub grown_from: Option<usize>,
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

    /// The sweep `name` of the experiments folder with its cells at a `ride reproduce` scale
    /// ("paper": the file as written; otherwise its `[scale.<scale>]` overrides).
    pub fn load_at_scale(experiments: &Path, name: &str, scale: &str) -> Result<(Self, Vec<Cell>)> {
        let (s, base) = Self::load(&experiments.join(format!("{name}.toml")))?;
        let cells = s
            .cells_at_scale(&base, (scale != "paper").then_some(scale))
            .with_context(|| format!("sweep '{name}'"))?;
        Ok((s, cells))
    }

    /// The cartesian product of the grid (keys sorted) × seeds, as validated configs.
    pub fn cells(&self, base: &toml::Table) -> Result<Vec<Cell>> {
        self.cells_at_scale(base, None)
    }

    /// [`Self::cells`] with the overrides of `scale` (an error if the file has none for it).
    pub fn cells_at_scale(&self, base: &toml::Table, scale: Option<&str>) -> Result<Vec<Cell>> {
        let mut scale_set = match scale {
            None => toml::Table::new(),
            Some(s) => self
                .scale
                .get(s)
                .cloned()
                .with_context(|| format!("sweep '{}' has no [scale.{s}] section", self.name))?,
        };
        let grow_stages = match (&self.grow, scale_set.remove("grow.stages")) {
            (None, Some(_)) => bail!("sweep '{}': grow.stages without [grow]", self.name),
            (None, None) => None,
            (Some(g), scaled) => Some(scaled.unwrap_or_else(|| g.stages.clone())),
        };
        self.check_keys(grow_stages.is_some())?;
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
        combos.retain(|c| !self.exclude.iter().any(|e| matches(c, e)));
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
                if let Some(stages) = &grow_stages {
                    grow_config(&mut t, &overrides, stages)
                        .with_context(|| format!("sweep '{}', cell {index}", self.name))?;
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
                    grown_from: None,
                });
            }
        }
        if grow_stages.is_some() {
            link_grown(&mut cells).with_context(|| format!("sweep '{}'", self.name))?;
        }
        Ok(cells)
    }

    /// Every key that names grid values (exclusions, plot filters and series) is a grid key,
    /// and growing has `model.hiddens` in the grid.
    fn check_keys(&self, grows: bool) -> Result<()> {
        let plots = self.plot.iter().chain(&self.plots);
        let named = self
            .exclude
            .iter()
            .flat_map(|t| t.keys())
            .chain(plots.clone().flat_map(|p| p.filter.keys()))
            .chain(plots.flat_map(|p| p.series_by.iter()));
        for k in named {
            if !self.grid.contains_key(k) {
                bail!("sweep '{}': '{k}' is not a grid key", self.name);
            }
        }
        if grows && !self.grid.contains_key(HIDDENS) {
            bail!(
                "sweep '{}': [grow] needs \"{HIDDENS}\" in the grid",
                self.name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_label_fills_the_value_and_its_plural() {
        let plot: SweepPlot = toml::from_str(
            r#"figure = "f"
x = "model.nb_size"
x_label = "nb"
series = "RIDE, {} layer{s}"
series_by = "model.hiddens"
series_of = "len"
"#,
        )
        .expect("plot parses");
        let cell = |h: Vec<i64>| {
            let v = toml::Value::Array(h.into_iter().map(toml::Value::Integer).collect());
            vec![("model.hiddens".to_string(), v)]
        };
        assert_eq!(plot.series_label(&cell(vec![64])), "RIDE, 1 layer");
        assert_eq!(plot.series_label(&cell(vec![64, 64])), "RIDE, 2 layers");
        assert_eq!(plot.series_label(&[]), "RIDE, ? layers");
    }
}
