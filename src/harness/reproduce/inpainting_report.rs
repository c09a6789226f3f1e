//! The inpainting section of `REPORT.md`: every fill per case, the means per method and sweep
//! count, how well each chain mixed, and the window target against the exact one.

use super::report::provenance_md;
use super::run_inpainting::FillRow;
use anyhow::Result;
use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

/// The section of the inpainting experiment `name` (its files under `dir`), or nothing when
/// its CSV is not there.
pub(super) fn inpainting_md(experiments: &Path, dir: &Path, name: &str) -> Result<String> {
    let mut md = String::new();
    let Ok(mut r) = csv::Reader::from_path(dir.join("inpainting.csv")) else {
        return Ok(md);
    };
    let _ = writeln!(md, "## Inpainting (`{name}`)\n");
    let rows: Vec<FillRow> = match r.deserialize().collect::<std::result::Result<_, _>>() {
        Ok(rows) => rows,
        // a CSV of an older harness (fewer columns): say so rather than lose the report
        Err(e) => {
            let _ = writeln!(
                    md,
                    "`{}` cannot be read ({e}); it was written by an older version of the harness: rerun `ride reproduce --only {name}` at its scale.\n",
                    dir.join("inpainting.csv").display(),
                );
            return Ok(md);
        }
    };
    let text = std::fs::read_to_string(experiments.join(format!("{name}.toml")))?;
    if let Some(d) = text.lines().find_map(|l| l.strip_prefix("description = ")) {
        let _ = writeln!(md, "{}\n", d.trim_matches('"'));
    }
    md.push_str("| case | image | method | hole log-likelihood under RIDE [bit/px] | crop [bit/px] | PSNR [dB] | SSIM | MH acceptance | sweeps | seconds | commit |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for f in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.4} | {:.2} | {:.3} | {} | {} | {:.1} | {} |",
            f.case,
            f.image,
            f.method,
            f.hole_bits_per_px,
            f.crop_bits_per_px,
            f.psnr_db,
            f.ssim,
            f.acceptance.map_or("–".into(), |a| format!("{a:.3}")),
            f.sweeps,
            f.seconds,
            f.git_commit
        );
    }
    md.push('\n');
    md.push_str(&inpainting_means_md(&rows));
    md.push_str(&sweeps_change_md(&rows));
    match read_chains(&dir.join("convergence.csv")) {
        Some(Ok(chains)) => {
            md.push_str(&mixing_md(&chains));
            md.push_str(&target_comparison_md(&rows, &chains));
        }
        Some(Err(e)) => {
            let _ = writeln!(md, "Mixing: {e}; no autocorrelation times.\n");
        }
        None => {}
    }
    if dir.join("inpainting.png").is_file() {
        let _ = writeln!(
            md,
            "![inpainting]({name}/inpainting.png) ([SVG]({name}/inpainting.svg))\n"
        );
    }
    md.push_str(&provenance_md(dir));
    md.push('\n');
    Ok(md)
}

/// `rows` grouped by `key`, groups and their rows in first-seen order.
fn group_rows<'a, K: PartialEq>(
    rows: &'a [FillRow],
    key: impl Fn(&'a FillRow) -> K,
) -> Vec<(K, Vec<&'a FillRow>)> {
    let mut groups: Vec<(K, Vec<&FillRow>)> = vec![];
    for r in rows {
        let k = key(r);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    groups
}

/// Each method's means over the cases (per sweep count and target, so a chain's fill after
/// a few sweeps stands beside the same chain's after all of them): what the sweeps changed.
fn inpainting_means_md(rows: &[FillRow]) -> String {
    let groups = group_rows(rows, |r| (r.method.as_str(), r.sweeps, r.target.as_str()));
    let cases = {
        let mut c: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut md = format!("Mean over the {cases} cases (a method's rows with the same sweeps and target; PSNR over the finite values; seconds per sweep: a chain's wall time, its initialisation included, on the shared machine of the provenance line):\n\n| method | sweeps | target | cases | hole log-likelihood [bit/px] | PSNR [dB] | SSIM | seconds per sweep |\n|---|---|---|---|---|---|---|---|\n");
    for ((method, sweeps, target), v) in &groups {
        let psnr: Vec<f64> = v
            .iter()
            .map(|r| r.psnr_db)
            .filter(|p| p.is_finite())
            .collect();
        let _ = writeln!(
            md,
            "| {method} | {sweeps} | {} | {} | {:.4} | {} | {:.3} | {} |",
            if target.is_empty() { "–" } else { target },
            v.len(),
            mean(&v.iter().map(|r| r.hole_bits_per_px).collect::<Vec<_>>()),
            if psnr.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}", mean(&psnr))
            },
            mean(&v.iter().map(|r| r.ssim).collect::<Vec<_>>()),
            // a chain's wall time (its initialisation included) over its sweeps
            if *sweeps == 0 {
                "–".to_string()
            } else {
                let secs = mean(&v.iter().map(|r| r.seconds).collect::<Vec<_>>());
                format!("{:.2}", secs / *sweeps as f64)
            },
        );
    }
    md.push('\n');
    md.push_str("PSNR and SSIM reward the average of the plausible fills, which the mean and harmonic fills come close to; a Metropolis–Hastings chain draws one plausible fill, so its PSNR and SSIM are lower by construction. The hole log-likelihood under the model, and the figure, are what the paper's inpainting shows.\n\n");
    md
}

/// What the sweeps changed, paired per case: for each chain method and target, its fill after
/// the most sweeps minus the same chain's fill after the fewest (the early rows), as the mean
/// difference over the cases ± its SEM (hole log-likelihood under RIDE, PSNR, SSIM).
fn sweeps_change_md(rows: &[FillRow]) -> String {
    // (method, target) → the chain's rows of every case and sweep count
    let chains = group_rows(rows, |r| {
        (r.sweeps > 0).then_some((r.method.as_str(), r.target.as_str()))
    });
    let mut lines = vec![];
    for (key, v) in &chains {
        let Some((method, target)) = key else {
            continue; // the baselines and the truth: no chain
        };
        let (Some(few), Some(most)) = (
            v.iter().map(|r| r.sweeps).min(),
            v.iter().map(|r| r.sweeps).max(),
        ) else {
            continue;
        };
        if few == most {
            continue;
        }
        // each case with both: (Δ hole, Δ PSNR, Δ SSIM)
        let pairs: Vec<(f64, f64, f64)> = v
            .iter()
            .filter(|r| r.sweeps == most)
            .filter_map(|m| {
                let f = v.iter().find(|r| r.sweeps == few && r.case == m.case)?;
                Some((
                    m.hole_bits_per_px - f.hole_bits_per_px,
                    m.psnr_db - f.psnr_db,
                    m.ssim - f.ssim,
                ))
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let stat = |g: fn(&(f64, f64, f64)) -> f64, digits: usize| {
            let x: Vec<f64> = pairs.iter().map(g).collect();
            let (m, sem) = crate::tasks::eval::mean_sem(&x);
            if x.len() < 2 {
                format!("{m:+.digits$}")
            } else {
                format!("{m:+.digits$} ± {sem:.digits$}")
            }
        };
        lines.push(format!(
            "| {method} | {target} | {few} → {most} | {} | {} | {} | {} |",
            pairs.len(),
            stat(|p| p.0, 4),
            stat(|p| p.1, 2),
            stat(|p| p.2, 3),
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "What the sweeps changed: each chain's fill after its last sweep minus the same chain's fill after its first sweeps, paired per case (mean over the cases ± SEM):\n\n| chain | target | sweeps | cases | Δ hole log-likelihood under RIDE [bit/px] | Δ PSNR [dB] | Δ SSIM |\n|---|---|---|---|---|---|---|\n{}\n\n",
        lines.join("\n")
    )
}

/// A chain's hole log-likelihood (bit/px, under its own model) after every sweep, the
/// initialisation left out: ((case, method), series).
type Chain = ((String, String), Vec<f64>);

/// Every chain of `convergence.csv`, in file order. `None` without the file; an error naming
/// the file when a line cannot be read (a gap in a series would bias what is computed on it).
fn read_chains(csv_path: &Path) -> Option<std::result::Result<Vec<Chain>, String>> {
    #[derive(Deserialize)]
    struct Conv {
        case: String,
        method: String,
        sweep: usize,
        hole_bits_per_px: f64,
    }
    let mut r = csv::Reader::from_path(csv_path).ok()?;
    let convs: std::result::Result<Vec<Conv>, _> = r.deserialize::<Conv>().collect();
    let convs = match convs {
        Ok(c) => c,
        Err(e) => {
            return Some(Err(format!(
                "`{}` cannot be read ({e})",
                csv_path.display()
            )))
        }
    };
    let mut chains: Vec<Chain> = vec![];
    for c in convs {
        if c.sweep == 0 {
            continue; // the initialisation is not a state of the chain's equilibrium
        }
        let key = (c.case, c.method);
        match chains.last_mut() {
            Some((k, v)) if *k == key => v.push(c.hole_bits_per_px),
            _ => chains.push((key, vec![c.hole_bits_per_px])),
        }
    }
    Some(Ok(chains))
}

/// The second half of a chain's series: the states after its burn-in, as both the mixing
/// table and the target comparison average them.
fn second_half(x: &[f64]) -> &[f64] {
    &x[x.len() / 2..]
}

/// How well each chain mixed: the hole log-likelihood's integrated autocorrelation time over
/// the sweeps, the number of roughly independent states it implies, and the mean over the
/// second half of the chain.
fn mixing_md(chains: &[Chain]) -> String {
    let rows: Vec<String> = chains
        .iter()
        .filter_map(|((case, method), x)| {
            let tau = crate::tasks::inpaint::autocorrelation_time(x)?;
            let half = second_half(x);
            let mean = half.iter().sum::<f64>() / half.len() as f64;
            Some(format!(
                "| {case} | {method} | {} | {tau:.1} | {:.0} | {mean:.4} |",
                x.len(),
                x.len() as f64 / tau
            ))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "Mixing: the integrated autocorrelation time τ of each chain's hole log-likelihood over its sweeps (Sokal's window; 1 = independent states), the roughly independent states the sweeps give (sweeps / τ), and the chain's mean over its second half (under its own model):\n\n| case | chain | sweeps | τ [sweeps] | sweeps / τ | mean, second half [bit/px] |\n|---|---|---|---|---|---|\n{}\n\n",
        rows.join("\n")
    )
}

/// The original code's window target against the exact crop target on the same hole: for
/// every image with chains of both targets (same method), each chain's mean hole
/// log-likelihood over its second half with its Monte Carlo standard error (from τ), and the
/// difference. A difference beyond 2 standard errors means the approximation moves the
/// chain's equilibrium.
fn target_comparison_md(rows: &[FillRow], chains: &[Chain]) -> String {
    // (image, method, target) → case, from the chains' rows
    let mut runs: Vec<(&str, &str, &str, &str)> = vec![];
    for r in rows.iter().filter(|r| !r.target.is_empty()) {
        let run = (
            r.image.as_str(),
            r.method.as_str(),
            r.target.as_str(),
            r.case.as_str(),
        );
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    let settled = |case: &str, method: &str| {
        let (_, x) = chains.iter().find(|((c, m), _)| c == case && m == method)?;
        crate::tasks::inpaint::mean_and_error(second_half(x))
    };
    let mut lines = vec![];
    for &(image, method, target, case_w) in &runs {
        if target != "window" {
            continue;
        }
        let Some(&(_, _, _, case_c)) = runs
            .iter()
            .find(|(i, m, t, _)| *i == image && *m == method && *t == "crop")
        else {
            continue;
        };
        let (Some((mw, ew)), Some((mc, ec))) = (settled(case_w, method), settled(case_c, method))
        else {
            continue;
        };
        let (d, e) = (mc - mw, ew.hypot(ec));
        lines.push(format!(
            "| {image} | {method} | {case_w}: {mw:.4} ± {ew:.4} | {case_c}: {mc:.4} ± {ec:.4} | {d:+.4} ± {e:.4} | {} |",
            if d.abs() > 2.0 * e { "differ" } else { "within 2 standard errors" }
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "Window target against the exact one: the same hole, model and seed, once with the original code's window target (each move's acceptance on its 19×19 window, an approximation) and once with the exact target (the whole evaluation crop's density). Each chain's mean hole log-likelihood over its second half (under its own model) ± its Monte Carlo standard error (√(variance · τ / sweeps)):\n\n| image | chain | window target | exact target | exact − window [bit/px] | |\n|---|---|---|---|---|---|\n{}\n\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::super::report::write_report;
    use super::super::Suite;
    use super::*;

    /// A row of `inpainting.csv` with placeholder numbers.
    fn fill_row(case: &str, image: &str, method: &str, target: &str) -> FillRow {
        FillRow {
            case: case.into(),
            image: image.into(),
            method: method.into(),
            hole_bits_per_px: 2.0,
            crop_bits_per_px: 0.0,
            psnr_db: 10.0,
            ssim: 0.5,
            acceptance: Some(0.03),
            sweeps: 1000,
            target: target.into(),
            seconds: 1.0,
            hole: 71,
            seed: 1,
            scale: "paper".into(),
            git_commit: "abc".into(),
            config_hash: "h".into(),
        }
    }

    /// An inpainting CSV of an older harness (no `ssim` column) is named in the report, with no
    /// number taken from it, and the rest of the report is still written.
    #[test]
    fn an_older_inpainting_csv_is_named_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results");
        std::fs::create_dir_all(out.join("inpainting")).unwrap();
        std::fs::write(
            out.join("inpainting/inpainting.csv"),
            "case,image,method,hole_bits_per_px\nc0,img,mean,1.2345\n",
        )
        .unwrap();
        let suite = Suite {
            tables: vec![],
            sweeps: vec![],
            inpainting: vec!["inpainting".into()],
        };
        write_report(Path::new("experiments"), &out, &suite, "paper").unwrap();
        let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
        assert!(md.contains("inpainting.csv` cannot be read"), "{md}");
        assert!(md.contains("missing field"), "{md}");
        assert!(!md.contains("1.2345"), "{md}");
    }

    /// Inpainting means: one line per method, sweep count and target, averaged over the
    /// cases; infinite PSNR (the true pixels) left out; seconds per sweep for chains only.
    #[test]
    fn inpainting_means_group_by_method_sweeps_and_target() {
        let row = |case: &str, method: &str, sweeps: usize, bits: f64, psnr: f64, secs: f64| {
            let target = if sweeps > 0 { "window" } else { "" };
            FillRow {
                hole_bits_per_px: bits,
                psnr_db: psnr,
                acceptance: (sweeps > 0).then_some(0.03),
                sweeps,
                seconds: secs,
                ..fill_row(case, "x.png", method, target)
            }
        };
        let rows = [
            row("a", "RIDE fill", 1000, 2.0, 10.0, 1000.0),
            row("a", "RIDE fill", 3, 2.4, 11.0, 9.0),
            row("a", "original (true pixels)", 0, 2.6, f64::INFINITY, 0.0),
            row("b", "RIDE fill", 1000, 3.0, 12.0, 3000.0),
            row("b", "RIDE fill", 3, 2.6, 13.0, 15.0),
            row("b", "original (true pixels)", 0, 2.8, f64::INFINITY, 0.0),
        ];
        let md = inpainting_means_md(&rows);
        assert!(md.contains("Mean over the 2 cases"), "{md}");
        // paired per case: a −0.4, b +0.4 → 0 ± 0.4; PSNR −1 both; the truth has no chain
        let change = sweeps_change_md(&rows);
        assert!(
            change.contains("| RIDE fill | window | 3 → 1000 | 2 | +0.0000 ± 0.4000 | -1.00 ± 0.00 | +0.000 ± 0.000 |"),
            "{change}"
        );
        assert!(!change.contains("true pixels"), "{change}");
        assert_eq!(sweeps_change_md(&rows[..1]), "");
        assert!(
            md.contains("| RIDE fill | 1000 | window | 2 | 2.5000 | 11.00 | 0.500 | 2.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| RIDE fill | 3 | window | 2 | 2.5000 | 12.00 | 0.500 | 4.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| original (true pixels) | 0 | – | 2 | 2.7000 | – | 0.500 | – |"),
            "{md}"
        );
    }

    /// The mixing table: one line per chain, sweep 0 (the initialisation) left out, chains
    /// with too few sweeps left out, no table without a convergence file.
    #[test]
    fn mixing_table_per_chain() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("convergence.csv");
        let mut text = String::from("case,method,sweep,hole_bits_per_px,acceptance\n");
        for k in 0..=8 {
            // alternating: τ < 1, clamped to 1
            let v = if k == 0 { 9.0 } else { 2.0 + (k % 2) as f64 };
            text.push_str(&format!("a,RIDE fill,{k},{v},\n"));
        }
        text.push_str("a,MCGSM fill,0,1.0,\na,MCGSM fill,1,1.5,0.1\n");
        std::fs::write(&csv, text).unwrap();
        let chains = read_chains(&csv).unwrap().unwrap();
        let md = mixing_md(&chains);
        assert!(
            md.contains("| a | RIDE fill | 8 | 1.0 | 8 | 2.5000 |"),
            "{md}"
        );
        assert!(!md.contains("MCGSM fill"), "{md}");
        assert!(read_chains(&dir.path().join("none.csv")).is_none());
        // a line that cannot be read: the file is refused, not read around
        std::fs::write(
            &csv,
            "case,method,sweep,hole_bits_per_px\na,RIDE fill,1,x\n",
        )
        .unwrap();
        let err = read_chains(&csv).unwrap().unwrap_err();
        assert!(err.contains("convergence.csv` cannot be read"), "{err}");
    }
    /// Window against exact target: a line per image and chain with both targets, the
    /// second halves' means ± their standard errors and the verdict; an image with one target
    /// only, or a chain without a convergence series, gives no line.
    #[test]
    fn window_and_exact_targets_are_compared_per_image() {
        let rows = [
            fill_row("w", "x.png", "RIDE fill", "window"),
            fill_row("w", "x.png", "MCGSM fill", "window"),
            fill_row("c", "x.png", "RIDE fill", "crop"),
            fill_row("c", "x.png", "MCGSM fill", "crop"),
            fill_row("c", "x.png", "mean fill", ""),
            fill_row("o", "y.png", "RIDE fill", "window"),
        ];
        // independent-looking series: first half 9.0 (dropped), second half alternating
        let series = |m: f64, d: f64| -> Vec<f64> {
            (0..40)
                .map(|k| {
                    if k < 20 {
                        9.0
                    } else {
                        m + d * ((k % 2) as f64 - 0.5)
                    }
                })
                .collect()
        };
        let key = |c: &str, m: &str| (c.to_string(), m.to_string());
        let chains = vec![
            (key("w", "RIDE fill"), series(2.0, 0.2)),
            (key("c", "RIDE fill"), series(2.5, 0.2)),
            (key("w", "MCGSM fill"), series(2.0, 2.0)),
            (key("c", "MCGSM fill"), series(2.1, 2.0)),
            (key("o", "RIDE fill"), series(2.0, 0.2)),
        ];
        let md = target_comparison_md(&rows, &chains);
        // alternating ±0.1: τ clamps to 1, variance 0.01·20/19, error √(0.01·20/19 / 20)
        let e = (0.01f64 / 19.0).sqrt();
        let want = format!(
            "| x.png | RIDE fill | w: 2.0000 ± {e:.4} | c: 2.5000 ± {e:.4} | +0.5000 ± {:.4} | differ |",
            e * 2f64.sqrt()
        );
        assert!(md.contains(&want), "{md}");
        assert!(
            md.contains("| x.png | MCGSM fill | w: 2.0000 ± ")
                && md.contains("| +0.1000 ± 0.3244 | within 2 standard errors |"),
            "{md}"
        );
        assert!(!md.contains("y.png") && !md.contains("mean fill"), "{md}");
        assert_eq!(target_comparison_md(&rows, &chains[4..]), "");
    }
}
