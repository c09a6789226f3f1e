//! The inpainting experiment's config (`experiments/inpainting.toml`): the chains' settings, the
//! cases, their checks.

use crate::tasks::inpaint::Target;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintingConfig {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub hole: usize,
    /// observed pixels per side of the hole in the evaluation crop (MH target)
    pub context: usize,
    pub sweeps: usize,
    pub candidates: usize,
    pub block: usize,
    pub window: usize,
    pub stride: usize,
    /// the MH target of every case: "crop" (exact, the default) or "window" (the original
    /// code's approximation, see `tasks::inpaint::Target`)
    #[serde(default = "crop_target")]
    pub target: String,
    pub seed: u64,
    /// also score each chain's fill after these many sweeps (those below `sweeps`; the same
    /// chain's first sweeps, replayed): what the remaining sweeps changed. Not part of a case's
    /// cache key — it does not change the chains — and kept apart (`cases/<id>.early.json`).
    #[serde(default, skip_serializing)]
    pub early_sweeps: Vec<usize>,
    /// width of the ring of observed pixels the mean fill averages
    pub mean_ring: usize,
    /// pixels shown around the hole in the figure
    pub show_margin: usize,
    pub cases: Vec<Case>,
    /// scale name → overrides of the top-level numbers above
    #[serde(default)]
    pub scale: BTreeMap<String, toml::Table>,
}

/// One image: the `test_image`-th test image of `table` (at the run's scale), filled with the
/// models of rows `ride` and `mcgsm` of that table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub table: String,
    pub test_image: usize,
    pub ride: String,
    pub mcgsm: String,
    /// this case's MH target, if not the config's
    pub target: Option<String>,
}

fn crop_target() -> String {
    "crop".into()
}

/// The target named in a config.
pub(super) fn parse_target(name: &str) -> Result<Target> {
    match name {
        "crop" => Ok(Target::Crop),
        "window" => Ok(Target::Window),
        other => bail!("target = {other:?}: use \"crop\" or \"window\""),
    }
}

/// Loads an inpainting config with the overrides of `scale` ("paper": as written).
pub fn load(path: &std::path::Path, scale: &str) -> Result<InpaintingConfig> {
    let text = crate::limits::read_config(path)?;
    let mut t: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if scale != "paper" {
        let s = t
            .get("scale")
            .and_then(|s| s.get(scale))
            .and_then(|s| s.as_table())
            .cloned()
            .with_context(|| format!("{}: no [scale.{scale}] section", path.display()))?;
        for (k, v) in s {
            crate::harness::sweep::set_dotted(&mut t, &k, v)?;
        }
    }
    let cfg: InpaintingConfig = t
        .try_into()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    cfg.validate()
        .with_context(|| format!("{}: invalid inpainting config", path.display()))?;
    Ok(cfg)
}

impl InpaintingConfig {
    /// Every number in range, checked before any table is trained (the cases' rows are
    /// checked by [`validate_cases`]).
    pub fn validate(&self) -> Result<()> {
        use crate::limits as lim;
        lim::check("hole", self.hole, 1, lim::MAX_IMAGE_SIDE)?;
        lim::check("context", self.context, 0, lim::MAX_IMAGE_SIDE)?;
        lim::check("sweeps", self.sweeps, 0, lim::MAX_SWEEPS)?;
        for &k in &self.early_sweeps {
            lim::check("early_sweeps", k, 1, lim::MAX_SWEEPS)?;
        }
        lim::check("candidates", self.candidates, 1, lim::MAX_CANDIDATES)?;
        lim::check("block", self.block, 1, lim::MAX_IMAGE_SIDE)?;
        lim::check("stride", self.stride, 1, self.block)?;
        lim::check("window", self.window, self.block, lim::MAX_IMAGE_SIDE)?;
        lim::check("mean_ring", self.mean_ring, 1, lim::MAX_IMAGE_SIDE)?;
        if self.cases.is_empty() {
            bail!("no cases");
        }
        parse_target(&self.target)?;
        for c in &self.cases {
            crate::train::config::check_name("cases.id", &c.id)?;
            if let Some(t) = &c.target {
                parse_target(t).with_context(|| format!("case '{}'", c.id))?;
            }
        }
        Ok(())
    }
}

/// Each case's table is one of `tables` and has trained rows `ride` and `mcgsm`.
pub fn validate_cases(
    cfg: &InpaintingConfig,
    tables: &[crate::harness::reproduce::table::Table],
) -> Result<()> {
    for c in &cfg.cases {
        let t = tables
            .iter()
            .find(|t| t.config.name == c.table)
            .with_context(|| {
                format!(
                    "case '{}': table '{}' is not run by this suite",
                    c.id, c.table
                )
            })?;
        for row in [&c.ride, &c.mcgsm] {
            let ok = t.rows.iter().any(|r| {
                r.id == *row
                    && matches!(r.kind, crate::harness::reproduce::table::RowKind::Train(_))
            });
            if !ok {
                bail!(
                    "case '{}': table '{}' has no trained row '{row}'",
                    c.id,
                    c.table
                );
            }
        }
    }
    Ok(())
}
