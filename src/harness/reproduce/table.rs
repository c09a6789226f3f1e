//! A table experiment (`experiments/<name>.toml` with `[[rows]]`): one row per model of a
//! paper table — trained from the `base` config plus the row's overrides, an ensemble of another
//! row (EoRIDE), or a given model file (the original code's model) — scored on the same test
//! images. `[scale.<s>]` sections shrink every number for the quick and standard scales; the
//! file as written is the paper scale.
//!
//! Overrides are dotted keys (`"training.max_patches" = 100000`), applied in this order:
//! `base` → `scale.<s>.all` → the row's `set` → `scale.<s>.<row id>`.

use crate::harness::sweep::set_dotted;
use crate::train::config::Experiment;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// ids of rows of `results/reference.csv` shown beside this table in the report
    #[serde(default)]
    pub references: Vec<String>,
    /// an experiment config (every key of `experiments/*.toml` training configs) minus `name`
    pub base: toml::Table,
    pub rows: Vec<RowSpec>,
    pub samples: Option<SampleSpec>,
    /// the paper's claims about this table, checked in the report (`better` row beats `worse`)
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// scale name → ("all" | row id | "samples") → dotted overrides
    #[serde(default)]
    pub scale: BTreeMap<String, BTreeMap<String, toml::Table>>,
}

/// One model of the table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub id: String,
    pub label: String,
    /// rows of the same group share a line of the samples figure (e.g. one texture plate)
    pub group: Option<String>,
    /// dotted overrides of `base` for this row
    #[serde(default)]
    pub set: toml::Table,
    /// start from this (earlier) row's trained model (`model.init_from`), e.g. to add a layer
    pub init_from_row: Option<String>,
    /// EoRIDE of this (earlier) row's model, no training
    pub ensemble_of: Option<String>,
    /// score this model file (relative to the config's folder), no training
    pub model_file: Option<PathBuf>,
    /// score only the first N test images (eval-only rows; e.g. the 8× slower ensemble)
    pub test_images: Option<usize>,
}

/// "Row `better` has a higher log-likelihood rate than row `worse`".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub text: String,
    pub better: String,
    pub worse: String,
    /// what we believe the reason is where the claim does not hold (written once the numbers
    /// are in; the report shows it only then, and says so where it is missing)
    #[serde(default)]
    pub if_not: String,
}

impl Claim {
    /// The report's words after a verdict of "does not hold": the reason, or that none is
    /// recorded yet (and where to record it).
    pub fn reason_md(&self, config: &str) -> String {
        if self.if_not.trim().is_empty() {
            format!(" — no reason recorded yet (`if_not` of this claim in `{config}`)")
        } else {
            format!(" — likely reason: {}", self.if_not.trim())
        }
    }
}

/// Samples drawn from every trained row (docs/MODEL.md §7: margin from the training marginal).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    pub size: usize,
    pub margin: usize,
    pub seed: u64,
    /// clip drawn pixels to these percentiles of the training pixels (e.g. [0.1, 99.9])
    pub clip_percentiles: Option<[f64; 2]>,
    /// show a crop of the training data as the first panel of every figure line
    #[serde(default)]
    pub show_training: bool,
}

impl SampleSpec {
    /// Sizes within [`crate::limits`], checked when the table is resolved (before any training).
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        let side = (lim::MAX_SAMPLE_PIXELS as f64).sqrt() as usize;
        lim::check("samples.size", self.size, 1, side)?;
        lim::check("samples.margin", self.margin, 0, lim::MAX_MARGIN)?;
        if let Some([lo, hi]) = self.clip_percentiles {
            if !(0.0..=100.0).contains(&lo) || !(0.0..=100.0).contains(&hi) || lo > hi {
                bail!("samples.clip_percentiles = [{lo}, {hi}] must be percentiles with lo ≤ hi");
            }
        }
        Ok(())
    }
}

/// What a row does.
#[derive(Clone, Debug)]
pub enum RowKind {
    Train(Box<Experiment>),
    Ensemble {
        of: String,
        test_images: Option<usize>,
    },
    ModelFile {
        path: PathBuf,
        test_images: Option<usize>,
    },
}

/// A row resolved at one scale.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub label: String,
    pub group: Option<String>,
    pub kind: RowKind,
}

/// A table resolved at one scale: its rows and the config its eval-only rows take test
/// images from (`base` at the scale).
#[derive(Clone, Debug)]
pub struct Table {
    pub config: TableConfig,
    pub scale: String,
    pub rows: Vec<Row>,
    pub base: Experiment,
    pub samples: Option<SampleSpec>,
}

impl TableConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::limits::read_config(path)?;
        let t: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        crate::train::config::check_name("name", &t.name)
            .with_context(|| format!("{}: invalid table config", path.display()))?;
        for r in &t.rows {
            crate::train::config::check_name("rows.id", &r.id)
                .with_context(|| format!("{}: invalid table config", path.display()))?;
        }
        Ok(t)
    }

    fn overrides(&self, scale: &str, target: &str) -> toml::Table {
        self.scale
            .get(scale)
            .and_then(|s| s.get(target))
            .cloned()
            .unwrap_or_default()
    }

    /// Resolves every row at `scale` ("paper" = the file as written); `results` is the folder
    /// the table's rows are written to (for `init_from_row`), `dir` the config's folder.
    pub fn resolve(&self, scale: &str, dir: &Path, results: &Path) -> Result<Table> {
        if scale != "paper" && !self.scale.contains_key(scale) {
            bail!("table '{}' has no [scale.{scale}] section", self.name);
        }
        if let Some(s) = self.scale.get(scale) {
            for target in s.keys() {
                let known = target == "all"
                    || target == "samples"
                    || self.rows.iter().any(|r| r.id == *target);
                if !known {
                    bail!(
                        "table '{}': [scale.{scale}.{target}] names no row (rows: {})",
                        self.name,
                        self.rows
                            .iter()
                            .map(|r| r.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        let experiment = |t: toml::Table, what: &str| -> Result<Experiment> {
            let e: Experiment = t
                .try_into()
                .map_err(|e| anyhow::anyhow!("table '{}', {what}: {e}", self.name))?;
            e.validate()
                .with_context(|| format!("table '{}', {what}", self.name))?;
            Ok(e)
        };
        let mut base_t = self.base.clone();
        for (k, v) in &self.overrides(scale, "all") {
            set_dotted(&mut base_t, k, v.clone())?;
        }
        base_t.insert("name".into(), self.name.clone().into());
        let base = experiment(base_t.clone(), "base")?;
        let mut rows: Vec<Row> = vec![];
        for r in &self.rows {
            if rows.iter().any(|o| o.id == r.id) {
                bail!("table '{}': row id '{}' appears twice", self.name, r.id);
            }
            let earlier = |id: &str| -> Result<()> {
                match rows.iter().find(|o| o.id == id) {
                    Some(Row {
                        kind: RowKind::Train(_),
                        ..
                    }) => Ok(()),
                    _ => bail!(
                        "table '{}', row '{}': '{id}' is not an earlier trained row",
                        self.name,
                        r.id
                    ),
                }
            };
            let scale_row = self.overrides(scale, &r.id);
            let test_images = match scale_row.get("test_images") {
                Some(v) => Some(v.as_integer().context("test_images must be an integer")? as usize),
                None => r.test_images,
            };
            let kind = match (&r.ensemble_of, &r.model_file) {
                (Some(of), None) => {
                    earlier(of)?;
                    RowKind::Ensemble {
                        of: of.clone(),
                        test_images,
                    }
                }
                (None, Some(p)) => RowKind::ModelFile {
                    path: dir.join(p),
                    test_images,
                },
                (Some(_), Some(_)) => bail!(
                    "table '{}', row '{}': ensemble_of and model_file exclude each other",
                    self.name,
                    r.id
                ),
                (None, None) => {
                    let mut t = base_t.clone();
                    for (k, v) in r.set.iter().chain(scale_row.iter()) {
                        set_dotted(&mut t, k, v.clone())?;
                    }
                    t.insert("name".into(), format!("{}_{}", self.name, r.id).into());
                    if let Some(from) = &r.init_from_row {
                        earlier(from)?;
                        let p = results.join(from).join("model.safetensors");
                        set_dotted(&mut t, "model.init_from", p.display().to_string().into())?;
                    }
                    RowKind::Train(Box::new(experiment(t, &format!("row '{}'", r.id))?))
                }
            };
            rows.push(Row {
                id: r.id.clone(),
                label: r.label.clone(),
                group: r.group.clone(),
                kind,
            });
        }
        let samples = match &self.samples {
            None => None,
            Some(s) => {
                let mut t: toml::Table = toml::Table::try_from(s)?;
                for (k, v) in &self.overrides(scale, "samples") {
                    set_dotted(&mut t, k, v.clone())?;
                }
                let spec: SampleSpec = t
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("table '{}', samples: {e}", self.name))?;
                spec.validate()
                    .with_context(|| format!("table '{}', samples", self.name))?;
                Some(spec)
            }
        };
        Ok(Table {
            config: self.clone(),
            scale: scale.to_string(),
            rows,
            base,
            samples,
        })
    }
}
