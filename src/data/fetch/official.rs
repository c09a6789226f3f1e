//! The three data sets as this project uses them, with their official hosts and the SHA-256
//! sums of every file (`src/data/fetch/sums/*.sha256`, copied from the data mirror's `SHA256SUMS`).
//!
//! | data set | official source | files | size |
//! |---|---|---|---|
//! | `bsds300` | Berkeley's `BSDS300-images.tgz` (22 MB); fallback: the BSDS500 GitHub mirror | 300 JPEGs + 2 id lists (derived) | 21 MiB |
//! | `vanhateren` | the `.iml` files of `Rieke-Lab/chris-package` on GitHub (pinned commit) | 46 images | 138 MiB |
//! | `brodatz` | T. Randen's mirror `www.ux.uis.no/~tranden/brodatz/`; fallback: GitHub | 111 plates | 35 MiB |
//!
//! `bsds300/gray/test/*.png` (the test JPEGs converted by PIL/libjpeg, the fixture model's
//! convention) cannot be derived bit-exactly here — our JPEG decoder differs from libjpeg by up
//! to 2 gray levels — so only a mirror (`--mirror`) provides them.

use super::{parse_sums, Dataset, Derived, Source};
use anyhow::Result;

pub const NAMES: [&str; 3] = ["bsds300", "vanhateren", "brodatz"];

const BSDS300_SUMS: &str = include_str!("sums/bsds300.sha256");
const VANHATEREN_SUMS: &str = include_str!("sums/vanhateren.sha256");
const BRODATZ_SUMS: &str = include_str!("sums/brodatz.sha256");

const BSDS300_TGZ: &str =
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz";
const BSDS500_GITHUB: &str =
    "https://raw.githubusercontent.com/BIDS/BSDS500/a04b7c6c3a9f0ace74bf205c72a43d32e1c72722/BSDS500/data";
const VANHATEREN_GITHUB: &str = "https://raw.githubusercontent.com/Rieke-Lab/chris-package/923961c617481307b729d9dc82df5216ec4987b0/+edu/+washington/+riekelab/+chris/+resources";
const BRODATZ_RANDEN: &str = "http://www.ux.uis.no/~tranden/brodatz";
const BRODATZ_GITHUB: &str = "https://raw.githubusercontent.com/ag-perception-wallis-lab/deadleaves/ed8cd35456187a989b77f239c9328602d42639e3/examples/textures/brodatz";

/// Data set `name` with its official sources, preceded by `mirrors` (each a URL whose
/// `<name>/<path>` files mirror the data directory's layout).
pub fn dataset(name: &str, mirrors: &[String]) -> Result<Dataset> {
    for m in mirrors {
        let ok = (m.starts_with("http://") || m.starts_with("https://"))
            && m.split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty());
        if !ok {
            anyhow::bail!(
                "--mirror '{}': not an http:// or https:// URL",
                super::http::redact(m)
            );
        }
    }
    let files = |sums: &str| parse_sums(sums);
    let mirror_sources = mirrors.iter().map(|m| Source::Files {
        base: format!("{}/{name}", m.trim_end_matches('/')),
        rename: vec![],
    });
    let files_at = |base: &str, rename: &[(&str, &str)]| Source::Files {
        base: base.to_string(),
        rename: rename
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let (files, official, derived, unavailable) = match name {
        "bsds300" => {
            let f = files(BSDS300_SUMS)?;
            let gray: Vec<(String, String)> = if mirrors.is_empty() {
                f.iter()
                    .filter(|e| e.path.starts_with("gray/"))
                    .map(|e| {
                        (
                            e.path.clone(),
                            "PIL/libjpeg gray conversion: only a mirror provides it (--mirror)"
                                .to_string(),
                        )
                    })
                    .collect()
            } else {
                vec![]
            };
            (
                f,
                vec![
                    Source::TarGz {
                        url: BSDS300_TGZ.into(),
                        map: vec![("BSDS300/images/".into(), "images/".into())],
                    },
                    files_at(
                        BSDS500_GITHUB,
                        &[
                            ("images/test/", "images/val/"),
                            ("images/train/", "images/train/"),
                        ],
                    ),
                ],
                vec![Derived::Bsds300IdLists],
                gray,
            )
        }
        "vanhateren" => (
            files(VANHATEREN_SUMS)?,
            vec![
                files_at(&format!("{VANHATEREN_GITHUB}/vanhateren_iml"), &[]),
                files_at(&format!("{VANHATEREN_GITHUB}/VHsubsample_20160105"), &[]),
            ],
            vec![],
            vec![],
        ),
        "brodatz" => (
            files(BRODATZ_SUMS)?,
            vec![files_at(BRODATZ_RANDEN, &[]), files_at(BRODATZ_GITHUB, &[])],
            vec![],
            vec![],
        ),
        other => anyhow::bail!("unknown data set '{other}' (known: {})", NAMES.join(", ")),
    };
    let sources = mirror_sources.chain(official).collect();
    // the largest file: van Hateren images are 3 MiB, the BSDS300 archive 22 MB
    let max_bytes = match name {
        "bsds300" => 64 << 20,
        _ => 8 << 20,
    };
    Ok(Dataset {
        name: name.to_string(),
        max_bytes,
        files,
        sources,
        derived,
        unavailable,
    })
}
