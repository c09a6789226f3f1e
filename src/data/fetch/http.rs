//! Resumable HTTP(S) downloads (ureq): a partial file is continued with a `Range` request, a
//! server that ignores the range restarts it, and a body shorter than its `Content-Length` is
//! an error (the partial file is kept for the next attempt).

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Why a download failed: the distinction decides whether another source is tried.
#[derive(Debug)]
pub enum DownloadError {
    /// The server answered with this status (404: the file is not there).
    Status(u16),
    /// Connection, transfer or local I/O failure.
    Other(anyhow::Error),
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(s) => write!(f, "HTTP status {s}"),
            Self::Other(e) => write!(f, "{e:#}"),
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// `url` with any `user:password@` replaced, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match host.rsplit_once('@') {
                Some((_, h)) => format!("{scheme}://***@{h}{path}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Downloads `url` into `part` (appending to what is already there when the server honours a
/// range request), at most `max_bytes` in all. `on_bytes(total_so_far, expected_total)` is
/// called as data arrives.
pub fn download(
    url: &str,
    part: &Path,
    max_bytes: u64,
    on_bytes: &mut dyn FnMut(u64, Option<u64>),
) -> std::result::Result<(), DownloadError> {
    let other = |e: anyhow::Error| DownloadError::Other(e);
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(other)?;
    }
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent().get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| other(e.into()))?;
    let status = resp.status().as_u16();
    // 416: the range starts at the end — the partial file is already complete
    if status == 416 && have > 0 {
        return Ok(());
    }
    let append = match status {
        206 => true,
        200 => false,
        s => return Err(DownloadError::Status(s)),
    };
    let len = resp.body().content_length();
    let expected = len.map(|n| if append { have + n } else { n });
    if expected.is_some_and(|e| e > max_bytes) {
        return Err(other(anyhow::anyhow!(
            "announces {} bytes, more than any file of this data set ({max_bytes})",
            expected.unwrap_or(0)
        )));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .with_context(|| format!("cannot write {}", part.display()))
        .map_err(other)?;
    let mut done = if append { have } else { 0 };
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                return Err(other(anyhow::anyhow!(
                    "the transfer broke off after {done} bytes ({e}); rerun to resume"
                )))
            }
        };
        file.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", part.display()))
            .map_err(other)?;
        done += n as u64;
        if done > max_bytes {
            drop(file);
            let _ = std::fs::remove_file(part);
            return Err(other(anyhow::anyhow!(
                "sent more than {max_bytes} bytes, more than any file of this data set; discarded"
            )));
        }
        on_bytes(done, expected);
    }
    file.sync_all()
        .with_context(|| format!("cannot write {}", part.display()))
        .map_err(other)?;
    if let Some(e) = expected {
        if done != e {
            return Err(other(anyhow::anyhow!(
                "got {done} of {e} bytes; rerun to resume"
            )));
        }
    }
    Ok(())
}

/// SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 of bytes as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `path` has the SHA-256 `want`; the error names the file and both sums.
pub fn verify(path: &Path, want: &str, what: &str) -> Result<()> {
    let got = sha256_file(path)?;
    if got != want {
        bail!("{what}: SHA-256 mismatch (expected {want}, got {got}); the file is not used");
    }
    Ok(())
}
