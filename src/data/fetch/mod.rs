//! `ride data fetch`: downloads the data sets from their official hosts (or a mirror), resumes
//! interrupted downloads, and verifies every file against the SHA-256 sums committed in
//! `src/data/fetch/sums/` (copied from the project's data mirror). A file that fails verification
//! is an error naming it and is never put in place: nothing unverified is used.
//!
//! A data set is a list of expected files (relative path + SHA-256) and the sources that can
//! provide them, tried in order: a mirror with the data directory's own layout
//! (`MIRROR/<data set>/<path>`), single files from an official host, or a `.tar.gz` archive
//! whose members are mapped onto the expected paths. Downloads go to `DATA_DIR/.download/`
//! and are continued there after an interruption.

pub mod http;
pub mod official;

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a data set.
#[derive(Clone, Debug)]
pub struct Expected {
    /// path relative to the data set's folder, e.g. `images/test/3096.jpg`
    pub path: String,
    pub sha256: String,
}

/// Where files can come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `base/<path>` per file, the path rewritten by the first matching `(from, to)` prefix.
    Files {
        base: String,
        rename: Vec<(String, String)>,
    },
    /// A gzip-compressed tar archive; member `from…` becomes expected path `to…`.
    TarGz {
        url: String,
        map: Vec<(String, String)>,
    },
}

/// Files derived from fetched ones (verified against their sums like every other file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derived {
    /// BSDS300 `iids_{train,test}.txt`: the ids of `images/{split}/*.jpg`, sorted numerically.
    Bsds300IdLists,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    /// no single file or archive of the data set is larger (a bound on every download)
    pub max_bytes: u64,
    pub files: Vec<Expected>,
    pub sources: Vec<Source>,
    pub derived: Vec<Derived>,
    /// expected files no source here can provide, with the reason (reported, not an error)
    pub unavailable: Vec<(String, String)>,
}

/// Parses `sha256sum` output (`HASH  PATH` per line).
pub fn parse_sums(text: &str) -> Result<Vec<Expected>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (h, p) = l
                .split_once("  ")
                .with_context(|| format!("bad SHA256SUMS line: {l}"))?;
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("bad SHA-256 in line: {l}");
            }
            Ok(Expected {
                path: p.trim().to_string(),
                sha256: h.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// What a fetch did.
#[derive(Debug, Default)]
pub struct Report {
    pub already_present: usize,
    pub fetched: usize,
    pub derived: usize,
    pub unavailable: Vec<(String, String)>,
}

/// Progress output: a bar on a terminal, plain lines otherwise (`crate::io::progress` style).
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

fn sanitize(path: &str) -> Result<()> {
    let p = Path::new(path);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("refusing the path '{path}': it would leave the data directory");
    }
    Ok(())
}

/// Fetches what is missing of `ds` into `data_dir/<name>/`, sources tried in order.
pub fn fetch(ds: &Dataset, data_dir: &Path, quiet: bool) -> Result<Report> {
    if data_dir.exists() && !data_dir.is_dir() {
        bail!(
            "{}: the data directory is not a directory",
            data_dir.display()
        );
    }
    let dest = data_dir.join(&ds.name);
    let staging = data_dir.join(".download").join(&ds.name);
    let mut report = Report {
        unavailable: ds.unavailable.clone(),
        ..Default::default()
    };
    let skip: std::collections::HashSet<&str> =
        ds.unavailable.iter().map(|(p, _)| p.as_str()).collect();
    let derived_paths = |d: Derived| -> Vec<&str> {
        match d {
            Derived::Bsds300IdLists => vec!["iids_train.txt", "iids_test.txt"],
        }
    };
    let derived: std::collections::HashSet<&str> =
        ds.derived.iter().flat_map(|&d| derived_paths(d)).collect();
    let mut missing: Vec<&Expected> = vec![];
    for e in &ds.files {
        sanitize(&e.path)?;
        if skip.contains(e.path.as_str()) || derived.contains(e.path.as_str()) {
            continue;
        }
        let p = dest.join(&e.path);
        if p.is_file() && http::sha256_file(&p)? == e.sha256 {
            report.already_present += 1;
        } else {
            missing.push(e);
        }
    }
    let mut errors: Vec<String> = vec![];
    for source in &ds.sources {
        if missing.is_empty() {
            break;
        }
        let r = match source {
            Source::Files { base, rename } => {
                fetch_files(ds, base, rename, &missing, &dest, &staging, quiet)
            }
            Source::TarGz { url, map } => {
                fetch_archive(ds, url, map, &missing, &dest, &staging, quiet)
            }
        };
        // an Err is local (the data directory cannot be written): no other source can help
        let (installed, errs) = r?;
        report.fetched += installed.len();
        errors.extend(errs);
        // installed files were verified on the way in: no need to hash them again
        missing.retain(|e| !installed.contains(&e.path));
    }
    if !missing.is_empty() {
        let list: Vec<&str> = missing.iter().take(5).map(|e| e.path.as_str()).collect();
        const SHOWN: usize = 8;
        let more = errors.len().saturating_sub(SHOWN);
        bail!(
            "{}: {} file(s) could not be fetched and verified (first: {}){}{}\n  (sources tried in order; a mirror can be given with --mirror URL or RIDE_DATA_MIRROR)",
            ds.name,
            missing.len(),
            list.join(", "),
            if errors.is_empty() {
                String::new()
            } else {
                format!("\n  {}", errors[..errors.len().min(SHOWN)].join("\n  "))
            },
            if more > 0 {
                format!("\n  … and {more} more errors")
            } else {
                String::new()
            }
        );
    }
    for &d in &ds.derived {
        report.derived += derive(ds, d, &dest)?;
    }
    // everything is in place: no partial download is worth keeping
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir(data_dir.join(".download"));
    Ok(report)
}

/// Moves a verified file into place (atomically: rename within the data directory).
fn install(tmp: &Path, dest: &Path) -> Result<()> {
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    std::fs::rename(tmp, dest)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))
}

/// `path` with its first matching `(from, to)` prefix replaced; `None` when no prefix matches.
fn map_prefix(path: &str, map: &[(String, String)]) -> Option<String> {
    map.iter()
        .find(|(from, _)| path.starts_with(from.as_str()))
        .map(|(from, to)| format!("{to}{}", &path[from.len()..]))
}

/// [`http::download`] with a progress bar (none when `quiet`).
fn download_shown(
    url: &str,
    part: &Path,
    max_bytes: u64,
    label: &str,
    quiet: bool,
) -> std::result::Result<(), http::DownloadError> {
    let b = (!quiet).then(|| bar(0, label));
    let r = http::download(url, part, max_bytes, &mut |done, total| {
        if let Some(b) = &b {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    });
    if let Some(b) = &b {
        b.finish_and_clear();
    }
    r
}

/// Files installed (their expected paths) and error lines of one source.
type SourceResult = Result<(Vec<String>, Vec<String>)>;

/// Per-file downloads; a 404 is reported per file.
fn fetch_files(
    ds: &Dataset,
    base: &str,
    rename: &[(String, String)],
    missing: &[&Expected],
    dest: &Path,
    staging: &Path,
    quiet: bool,
) -> SourceResult {
    let (mut installed, mut errors) = (vec![], vec![]);
    // a host that cannot be reached for the first few files is given up (not asked 300 times)
    let mut unreachable = 0;
    for e in missing {
        if installed.is_empty() && unreachable >= 3 {
            errors.push(format!(
                "{}: {}: unreachable for the first {unreachable} files; the rest of this source was skipped",
                ds.name,
                http::redact(base)
            ));
            break;
        }
        let remote = map_prefix(&e.path, rename).unwrap_or_else(|| e.path.clone());
        let url = format!("{}/{}", base.trim_end_matches('/'), remote);
        let shown = http::redact(&url);
        let part = staging.join(format!("{}.part", e.path));
        let label = format!("{}/{}", ds.name, e.path);
        match download_shown(&url, &part, ds.max_bytes, &label, quiet) {
            Ok(()) => {
                let what = format!("{}/{} (from {shown})", ds.name, e.path);
                match http::verify(&part, &e.sha256, &what) {
                    Ok(()) => {
                        install(&part, &dest.join(&e.path))?;
                        installed.push(e.path.clone());
                    }
                    Err(err) => {
                        let _ = std::fs::remove_file(&part);
                        errors.push(format!("{err:#}"));
                    }
                }
            }
            Err(err) => {
                if matches!(err, http::DownloadError::Other(_)) {
                    unreachable += 1;
                }
                errors.push(format!("{}/{}: {shown}: {err}", ds.name, e.path));
            }
        }
    }
    Ok((installed, errors))
}

/// One archive: download (resumable), then extract the wanted members, verifying each.
fn fetch_archive(
    ds: &Dataset,
    url: &str,
    map: &[(String, String)],
    missing: &[&Expected],
    dest: &Path,
    staging: &Path,
    quiet: bool,
) -> SourceResult {
    let name = url.rsplit('/').next().unwrap_or("archive");
    let part = staging.join(format!("{name}.part"));
    let shown = http::redact(url);
    let label = format!("{}: {name}", ds.name);
    if let Err(e) = download_shown(url, &part, ds.max_bytes, &label, quiet) {
        return Ok((vec![], vec![format!("{}: archive {shown}: {e}", ds.name)]));
    }
    let wanted: std::collections::HashMap<&str, &Expected> =
        missing.iter().map(|e| (e.path.as_str(), *e)).collect();
    let result = (|| -> SourceResult {
        let f = std::fs::File::open(&part)
            .with_context(|| format!("cannot read {}", part.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let (mut installed, mut errors) = (vec![], vec![]);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let member = entry.path()?.to_string_lossy().into_owned();
            let Some(path) = map_prefix(&member, map) else {
                continue;
            };
            let Some(e) = wanted.get(path.as_str()) else {
                continue;
            };
            let mut bytes = vec![];
            entry.read_to_end(&mut bytes)?;
            let got = http::sha256_bytes(&bytes);
            if got != e.sha256 {
                errors.push(format!(
                    "{}/{} (member {member} of {url}): SHA-256 mismatch (expected {}, got {got}); the file is not used",
                    ds.name, e.path, e.sha256
                ));
                continue;
            }
            let tmp = staging.join(format!("{path}.extracted"));
            if let Some(d) = tmp.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&tmp, &bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            install(&tmp, &dest.join(&path))?;
            installed.push(path);
        }
        Ok((installed, errors))
    })();
    match result {
        Ok(r) => {
            let _ = std::fs::remove_file(&part);
            Ok(r)
        }
        Err(e) => {
            // a complete download that does not unpack is corrupt: start it afresh next time
            let _ = std::fs::remove_file(&part);
            Ok((
                vec![],
                vec![format!(
                    "{}: archive {shown} is truncated or corrupt (deleted; rerun to download it again): {e:#}",
                    ds.name
                )],
            ))
        }
    }
}

/// Writes a derived file and verifies it against its sum; returns how many were written.
fn derive(ds: &Dataset, d: Derived, dest: &Path) -> Result<usize> {
    let sum = |p: &str| ds.files.iter().find(|e| e.path == p).map(|e| &e.sha256);
    let mut n = 0;
    match d {
        Derived::Bsds300IdLists => {
            for split in ["train", "test"] {
                let rel = format!("iids_{split}.txt");
                let mut ids: Vec<u64> = vec![];
                let dir = dest.join("images").join(split);
                for entry in std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot list {}", dir.display()))?
                {
                    let p = entry?.path();
                    if p.extension().is_some_and(|e| e == "jpg") {
                        let id = p
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .and_then(|s| s.parse().ok())
                            .with_context(|| format!("{}: not a BSDS300 id", p.display()))?;
                        ids.push(id);
                    }
                }
                ids.sort_unstable();
                let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
                if let Some(want) = sum(&rel) {
                    let got = http::sha256_bytes(text.as_bytes());
                    if &got != want {
                        bail!("{}/{rel}: the id list derived from the images has SHA-256 {got}, expected {want}", ds.name);
                    }
                }
                crate::io::files::write_atomic(&dest.join(&rel), text.as_bytes())?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Every expected file present with the right sum (for `ride data verify`).
pub fn verify_all(ds: &Dataset, data_dir: &Path) -> Result<(usize, Vec<PathBuf>)> {
    let dest = data_dir.join(&ds.name);
    let mut ok = 0;
    let mut bad = vec![];
    for e in &ds.files {
        let p = dest.join(&e.path);
        if p.is_file() && http::sha256_file(&p)? == e.sha256 {
            ok += 1;
        } else {
            bad.push(p);
        }
    }
    Ok((ok, bad))
}
