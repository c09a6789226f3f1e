//! The report's `## Status` section: which rows, sweep cells and inpainting cases of the suite
//! have finished and which have not, so that the report of a campaign still running says what
//! it does not cover yet. Read from the files the runs leave (no training, no hashing of
//! models): `ride reproduce` decides exactly what it reuses.

use super::run_inpainting;
use super::table::TableConfig;
use super::{Suite, TableRow};
use crate::harness::sweep::{Row as CellRow, SweepConfig};
use crate::train::NUMERICS_VERSION;
use std::fmt::Write;
use std::path::Path;

/// How far one experiment has come.
struct Line {
    name: String,
    kind: &'static str,
    finished: usize,
    total: usize,
    /// what has not finished, each with what is known of it
    pending: Vec<String>,
}

/// The `## Status` section (empty when the suite is empty).
pub fn status_md(experiments: &Path, out: &Path, suite: &Suite, scale: &str) -> String {
    let mut lines: Vec<Line> = vec![];
    for name in &suite.tables {
        lines.extend(table_line(experiments, out, name));
    }
    for name in &suite.sweeps {
        lines.extend(sweep_line(experiments, out, name, scale));
    }
    for name in &suite.inpainting {
        lines.extend(inpainting_line(experiments, out, name, scale));
    }
    if lines.is_empty() {
        return String::new();
    }
    let done = lines.iter().filter(|l| l.finished == l.total).count();
    let mut md = format!(
        "## Status\n\n{done} of {} experiments finished at this scale. A table row counts as finished when its `row.json` is there, of the current numerics version; a sweep cell when its row file is; an inpainting case when its `cases/<id>.json` is. `ride reproduce` reuses what is finished and runs the rest (killed runs resume from their checkpoints).\n\n| experiment | finished | not finished yet |\n|---|---|---|\n",
        lines.len()
    );
    for l in &lines {
        let _ = writeln!(
            md,
            "| `{}` ({}) | {} of {} | {} |",
            l.name,
            l.kind,
            l.finished,
            l.total,
            if l.pending.is_empty() {
                "–".to_string()
            } else {
                l.pending.join("; ")
            }
        );
    }
    md.push('\n');
    md
}

/// What a killed or still running row or cell has saved to resume from: its training
/// checkpoint, or the L-BFGS state of an MCGSM baseline (with its iteration count).
fn progress_saved(dir: &Path) -> Option<String> {
    if dir.join("checkpoint.safetensors").is_file() {
        return Some("checkpoint saved".into());
    }
    #[derive(serde::Deserialize)]
    struct LbfgsState {
        done: u64,
    }
    let done = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("lbfgs_state_") && n.ends_with(".json")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<LbfgsState>(&t).ok())
        .map(|s| s.done)
        .max()?;
    Some(format!("L-BFGS state saved after {done} iterations"))
}

fn table_line(experiments: &Path, out: &Path, name: &str) -> Option<Line> {
    let cfg = TableConfig::load(&experiments.join(format!("{name}.toml"))).ok()?;
    let mut pending = vec![];
    let mut finished = 0;
    for r in &cfg.rows {
        let row: Option<TableRow> =
            std::fs::read_to_string(out.join(name).join(&r.id).join("row.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        match row {
            Some(row) if row.numerics_version == NUMERICS_VERSION => finished += 1,
            Some(row) => pending.push(format!(
                "{} (numerics version {}, current {NUMERICS_VERSION})",
                r.id, row.numerics_version
            )),
            None => pending.push(match progress_saved(&out.join(name).join(&r.id)) {
                Some(p) => format!("{} ({p})", r.id),
                None => r.id.clone(),
            }),
        }
    }
    Some(Line {
        name: name.into(),
        kind: "rows",
        finished,
        total: cfg.rows.len(),
        pending,
    })
}

fn sweep_line(experiments: &Path, out: &Path, name: &str, scale: &str) -> Option<Line> {
    let (_, cells) = SweepConfig::load_at_scale(experiments, name, scale).ok()?;
    let dir = out.join(name);
    let mut pending = vec![];
    let mut finished = 0;
    for c in &cells {
        let row: Option<CellRow> =
            std::fs::read_to_string(dir.join("rows").join(format!("{:04}.json", c.index)))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        let saved = progress_saved(&dir.join("cells").join(format!("{:04}", c.index)));
        match (row, saved) {
            (Some(r), _) if r.numerics_version == NUMERICS_VERSION => finished += 1,
            (_, Some(p)) => pending.push(format!("{} ({p})", c.id())),
            _ => {}
        }
    }
    let waiting = cells.len() - finished - pending.len();
    if waiting > 0 {
        pending.push(format!("{waiting} cells not started"));
    }
    Some(Line {
        name: name.into(),
        kind: "cells",
        finished,
        total: cells.len(),
        pending,
    })
}

fn inpainting_line(experiments: &Path, out: &Path, name: &str, scale: &str) -> Option<Line> {
    let cfg = run_inpainting::load(&experiments.join(format!("{name}.toml")), scale).ok()?;
    let dir = out.join(name);
    let mut pending = vec![];
    let mut finished = 0;
    for c in &cfg.cases {
        match run_inpainting::case_progress(&dir, &c.id) {
            run_inpainting::CaseProgress::Kept => finished += 1,
            run_inpainting::CaseProgress::ChainSaved => {
                pending.push(format!("{} (a chain's state saved)", c.id))
            }
            run_inpainting::CaseProgress::NotStarted => pending.push(c.id.clone()),
        }
    }
    Some(Line {
        name: name.into(),
        kind: "cases",
        finished,
        total: cfg.cases.len(),
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows, cells and cases are counted from their files: a row of an older numerics version
    /// is named as such, a started cell and a saved chain state are told apart from nothing at
    /// all; and the report shows a table whose rows ran one by one (`--row`, no `table.csv`).
    #[test]
    fn status_counts_what_finished_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let row = |id: &str, version: u32| {
            let mut v: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string("results/vanhateren/ride1/row.json").unwrap(),
            )
            .unwrap();
            v["row"] = id.into();
            v["numerics_version"] = version.into();
            v["git_commit"] = "abc1234-dirty".into();
            std::fs::create_dir_all(out.join("vanhateren").join(id)).unwrap();
            std::fs::write(
                out.join("vanhateren").join(id).join("row.json"),
                v.to_string(),
            )
            .unwrap();
        };
        row("ride1", NUMERICS_VERSION);
        row("mcgsm", 1);
        std::fs::create_dir_all(out.join("vanhateren/ride2")).unwrap();
        std::fs::write(
            out.join("vanhateren/ride2/lbfgs_state_0.json"),
            r#"{"key":"k","done":400,"param":[1.0]}"#,
        )
        .unwrap();
        let sweep = out.join("sweep_vh_nb_size_mcgsm");
        std::fs::create_dir_all(sweep.join("rows")).unwrap();
        let mut cell: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string("results/sweep_vh_nb_size_mcgsm/rows/0000.json").unwrap(),
        )
        .unwrap();
        cell["numerics_version"] = NUMERICS_VERSION.into();
        std::fs::write(sweep.join("rows/0000.json"), cell.to_string()).unwrap();
        std::fs::create_dir_all(sweep.join("cells/0001")).unwrap();
        std::fs::write(sweep.join("cells/0001/checkpoint.safetensors"), b"x").unwrap();
        let inp = out.join("inpainting");
        std::fs::create_dir_all(inp.join("cases")).unwrap();
        std::fs::write(inp.join("cases/bsds300_test0.json"), b"{}").unwrap();
        std::fs::write(
            run_inpainting::chain_state_path(&inp, "bsds300_test1", "RIDE fill"),
            b"{}",
        )
        .unwrap();
        let suite = Suite {
            tables: vec!["vanhateren".into()],
            sweeps: vec!["sweep_vh_nb_size_mcgsm".into()],
            inpainting: vec!["inpainting".into()],
        };
        let md = status_md(Path::new("experiments"), out, &suite, "paper");
        assert!(md.contains("0 of 3 experiments finished"), "{md}");
        assert!(
            md.contains(&format!(
                "| `vanhateren` (rows) | 1 of 5 | mcgsm (numerics version 1, current {NUMERICS_VERSION}); ride2 (L-BFGS state saved after 400 iterations); eoride1; eoride2 |"
            )),
            "{md}"
        );
        assert!(
            md.contains("| `sweep_vh_nb_size_mcgsm` (cells) | 1 of 12 | model.nb_size=3 seed=2 (checkpoint saved); 10 cells not started |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 of 8 | bsds300_test1 (a chain's state saved); bsds300_test2;"),
            "{md}"
        );
        super::super::report::write_report(Path::new("experiments"), out, &suite, "paper").unwrap();
        let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
        assert!(report.contains("## van Hateren"), "{report}");
        assert!(report.contains("| 1.2127 ± 0.0295 |"), "{report}");
        assert!(
            report.contains("rows name a commit ending in `-dirty`"),
            "{report}"
        );
    }
}
