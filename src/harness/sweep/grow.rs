//! Grown cells (`[grow]`): a cell with L layers starts from the trained cell with L − 1 (same
//! seed and other grid values), adding the last layer in the first grow stage.

use super::{grid_value, set_dotted, Cell, HIDDENS};
use anyhow::{bail, Context, Result};

/// The hidden units of a cell's `model.hiddens` grid value.
fn hiddens_of(overrides: &[(String, toml::Value)]) -> Result<Vec<toml::Value>> {
    grid_value(overrides, HIDDENS)
        .and_then(|v| v.as_array().cloned())
        .with_context(|| format!("{HIDDENS} must be a list of layer sizes"))
}

/// A grown cell's config: the model it starts from has the first L − 1 layers, and the grow
/// stages add the last one in their first stage.
pub(super) fn grow_config(
    t: &mut toml::Table,
    overrides: &[(String, toml::Value)],
    stages: &toml::Value,
) -> Result<()> {
    let h = hiddens_of(overrides)?;
    if h.len() < 2 {
        return Ok(());
    }
    let mut stages = stages
        .as_array()
        .filter(|a| !a.is_empty())
        .cloned()
        .context("grow.stages must be a non-empty list of stages")?;
    let first = stages[0]
        .as_table_mut()
        .context("grow.stages: every stage is a table")?;
    if first.contains_key("add_layer") {
        bail!("grow.stages: the first stage's add_layer is set by the grown layer's size");
    }
    first.insert("add_layer".into(), h[h.len() - 1].clone());
    set_dotted(t, HIDDENS, toml::Value::Array(h[..h.len() - 1].to_vec()))?;
    set_dotted(t, "training.stages", toml::Value::Array(stages))
}

/// Links each grown cell to the cell it starts from: the same grid values and seed, one layer
/// fewer.
pub(super) fn link_grown(cells: &mut [Cell]) -> Result<()> {
    for i in 0..cells.len() {
        let h = hiddens_of(&cells[i].overrides)?;
        if h.len() < 2 {
            continue;
        }
        let mut want = cells[i].overrides.clone();
        for (k, v) in want.iter_mut() {
            if k == HIDDENS {
                *v = toml::Value::Array(h[..h.len() - 1].to_vec());
            }
        }
        let seed = cells[i].seed;
        let parent = cells
            .iter()
            .position(|c| c.seed == seed && c.overrides == want)
            .with_context(|| {
                format!(
                    "cell {i} ({}) grows from a cell with {HIDDENS} = {}, which the grid does not have",
                    cells[i].id(),
                    toml::Value::Array(h[..h.len() - 1].to_vec())
                )
            })?;
        cells[i].grown_from = Some(parent);
    }
    Ok(())
}

/// The cells in levels: first those trained from scratch, then those grown from the first
/// level, and so on. A level starts once the one before has finished.
pub fn levels(cells: &[Cell]) -> Vec<Vec<usize>> {
    let depth = |mut i: usize| {
        let mut d = 0;
        while let Some(p) = cells.get(i).and_then(|c| c.grown_from) {
            (i, d) = (p, d + 1);
        }
        d
    };
    let mut out: Vec<Vec<usize>> = vec![];
    for c in cells {
        let d = depth(c.index);
        if out.len() <= d {
            out.resize(d + 1, vec![]);
        }
        out[d].push(c.index);
    }
    out
}
