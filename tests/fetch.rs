//! `ride data fetch` without the internet: a small HTTP server on the loopback address serves
//! fixture files and archives (good, truncated in transfer, corrupted, truncated archives, 404)
//! and the fetcher must download, resume, verify, and report every failure by file.

mod common;

use ride::data::fetch::http::sha256_bytes;
use ride::data::fetch::{fetch, Dataset, Expected, Source};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// How the server answers one path.
#[derive(Clone)]
enum Reply {
    /// the bytes, honouring `Range: bytes=N-`
    Ok(Vec<u8>),
    /// declares the full length, sends only this many bytes, then closes (a broken transfer)
    BreakAfter(Vec<u8>, usize),
    /// no Content-Length: the body ends when the connection closes
    NoLength(Vec<u8>),
}

/// (path, Range header) of every request.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    /// (path, Range header) of every request
    log: RequestLog,
}

fn serve() -> Server {
    serve_root(None)
}

/// A server that also serves the files under `root` (a mirror laid out like a data directory).
fn serve_root(root: Option<std::path::PathBuf>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
    let log: RequestLog = Arc::default();
    let (r, l) = (routes.clone(), log.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            l.lock().unwrap().push((path.clone(), range.clone()));
            let reply = r.lock().unwrap().get(&path).cloned().or_else(|| {
                let root = root.as_ref()?;
                let rel = path.trim_start_matches('/');
                if rel.split('/').any(|c| c == "..") {
                    return None;
                }
                std::fs::read(root.join(rel)).ok().map(Reply::Ok)
            });
            let _ = match reply {
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
                Some(Reply::Ok(bytes)) => {
                    let from: usize = range.and_then(|r| r.parse().ok()).unwrap_or(0);
                    if from > 0 && from <= bytes.len() {
                        let body = &bytes[from..];
                        let head = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
                            body.len(),
                            bytes.len() - 1,
                            bytes.len()
                        );
                        stream
                            .write_all(head.as_bytes())
                            .and_then(|()| stream.write_all(body))
                    } else {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        );
                        stream
                            .write_all(head.as_bytes())
                            .and_then(|()| stream.write_all(&bytes))
                    }
                }
                Some(Reply::NoLength(bytes)) => stream
                    .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                    .and_then(|()| stream.write_all(&bytes)),
                Some(Reply::BreakAfter(bytes, n)) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    );
                    stream
                        .write_all(head.as_bytes())
                        .and_then(|()| stream.write_all(&bytes[..n]))
                }
            };
            let _ = stream.flush();
        }
    });
    Server { base, routes, log }
}

impl Server {
    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }
    fn requests(&self, path: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|k| (k as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn dataset(files: &[(&str, &[u8])], sources: Vec<Source>) -> Dataset {
    Dataset {
        name: "toy".into(),
        files: files
            .iter()
            .map(|(p, b)| Expected {
                path: p.to_string(),
                sha256: sha256_bytes(b),
            })
            .collect(),
        sources,
        derived: vec![],
        unavailable: vec![],
        max_bytes: 1 << 20,
    }
}

fn files_at(base: &str) -> Source {
    Source::Files {
        base: base.to_string(),
        rename: vec![],
    }
}

fn err(e: anyhow::Error) -> String {
    let s = format!("{e:#}");
    println!("{s}");
    s
}

fn tgz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(
        vec![],
        flate2::Compression::default(),
    ));
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, *bytes).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

#[test]
fn downloads_verifies_and_skips_what_is_there() {
    let s = serve();
    let (a, b) = (payload(70_000, 1), payload(1_000, 2));
    s.route("/m/toy/a.bin", Reply::Ok(a.clone()));
    s.route("/m/toy/sub/b.bin", Reply::Ok(b.clone()));
    let ds = dataset(
        &[("a.bin", &a), ("sub/b.bin", &b)],
        vec![files_at(&format!("{}/m/toy", s.base))],
    );
    let dir = tempfile::tempdir().unwrap();
    let r = fetch(&ds, dir.path(), true).unwrap();
    assert_eq!((r.fetched, r.already_present), (2, 0));
    assert_eq!(std::fs::read(dir.path().join("toy/a.bin")).unwrap(), a);
    assert_eq!(std::fs::read(dir.path().join("toy/sub/b.bin")).unwrap(), b);
    assert!(!dir.path().join(".download").exists());
    let r = fetch(&ds, dir.path(), true).unwrap();
    assert_eq!((r.fetched, r.already_present), (0, 2));
    // a file altered on disk is fetched again
    std::fs::write(dir.path().join("toy/a.bin"), b"tampered").unwrap();
    let r = fetch(&ds, dir.path(), true).unwrap();
    assert_eq!((r.fetched, r.already_present), (1, 1));
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let s = serve();
    let a = payload(200_000, 3);
    // first attempt: the connection breaks after 60 000 bytes
    s.route("/toy/a.bin", Reply::BreakAfter(a.clone(), 60_000));
    let ds = dataset(&[("a.bin", &a)], vec![files_at(&format!("{}/toy", s.base))]);
    let dir = tempfile::tempdir().unwrap();
    let e = err(fetch(&ds, dir.path(), true).unwrap_err());
    assert!(e.contains("a.bin") && e.contains("resume"), "{e}");
    assert!(
        !dir.path().join("toy/a.bin").exists(),
        "a partial file was installed"
    );
    let part = dir.path().join(".download/toy/a.bin.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 60_000);
    // second attempt: the server is fine; only the rest is requested
    s.route("/toy/a.bin", Reply::Ok(a.clone()));
    fetch(&ds, dir.path(), true).unwrap();
    assert_eq!(std::fs::read(dir.path().join("toy/a.bin")).unwrap(), a);
    assert_eq!(
        s.requests("/toy/a.bin").last().unwrap().as_deref(),
        Some("60000")
    );
}

#[test]
fn corrupted_files_and_404s_are_errors_naming_the_file() {
    let s = serve();
    let (a, b) = (payload(5_000, 4), payload(5_000, 5));
    let mut bad = a.clone();
    bad[100] ^= 0xFF;
    s.route("/one/toy/a.bin", Reply::Ok(bad));
    let ds = dataset(
        &[("a.bin", &a), ("b.bin", &b)],
        vec![files_at(&format!("{}/one/toy", s.base))],
    );
    let dir = tempfile::tempdir().unwrap();
    let e = err(fetch(&ds, dir.path(), true).unwrap_err());
    assert!(
        e.contains("toy/a.bin") && e.contains("SHA-256 mismatch"),
        "{e}"
    );
    assert!(e.contains("toy/b.bin") && e.contains("404"), "{e}");
    assert!(
        !dir.path().join("toy/a.bin").exists(),
        "an unverified file was installed"
    );
    // a second source provides both: sources are tried in order
    s.route("/two/toy/a.bin", Reply::Ok(a.clone()));
    s.route("/two/toy/b.bin", Reply::Ok(b.clone()));
    let ds = dataset(
        &[("a.bin", &a), ("b.bin", &b)],
        vec![
            files_at(&format!("{}/one/toy", s.base)),
            files_at(&format!("{}/two/toy", s.base)),
        ],
    );
    let r = fetch(&ds, dir.path(), true).unwrap();
    assert_eq!(r.fetched, 2);
}

#[test]
fn archives_are_extracted_verified_and_refused_when_truncated_or_corrupt() {
    let s = serve();
    let (a, b) = (payload(30_000, 6), payload(2_000, 7));
    let good = tgz(&[
        ("DS/images/a.bin", &a),
        ("DS/images/x/b.bin", &b),
        ("DS/README", b"ignored"),
    ]);
    let map = vec![("DS/images/".to_string(), "img/".to_string())];
    let ds = |url: &str| {
        dataset(
            &[("img/a.bin", &a), ("img/x/b.bin", &b)],
            vec![Source::TarGz {
                url: url.to_string(),
                map: map.clone(),
            }],
        )
    };
    let dir = tempfile::tempdir().unwrap();
    // truncated archive (the server sends all of a cut file)
    s.route("/cut.tgz", Reply::Ok(good[..good.len() / 2].to_vec()));
    let e = err(fetch(&ds(&format!("{}/cut.tgz", s.base)), dir.path(), true).unwrap_err());
    assert!(
        e.contains("cut.tgz") && e.contains("truncated or corrupt"),
        "{e}"
    );
    assert!(
        !dir.path().join("toy/img/a.bin").exists() || !dir.path().join("toy/img/x/b.bin").exists()
    );
    // a member with other content than its sum
    let mut b2 = b.clone();
    b2[0] ^= 1;
    s.route(
        "/bad.tgz",
        Reply::Ok(tgz(&[("DS/images/a.bin", &a), ("DS/images/x/b.bin", &b2)])),
    );
    let e = err(fetch(&ds(&format!("{}/bad.tgz", s.base)), dir.path(), true).unwrap_err());
    assert!(
        e.contains("img/x/b.bin") && e.contains("SHA-256 mismatch"),
        "{e}"
    );
    assert!(!dir.path().join("toy/img/x/b.bin").exists());
    // 404
    let e = err(fetch(&ds(&format!("{}/nothing.tgz", s.base)), dir.path(), true).unwrap_err());
    assert!(e.contains("nothing.tgz") && e.contains("404"), "{e}");
    // the good archive
    s.route("/good.tgz", Reply::Ok(good));
    fetch(&ds(&format!("{}/good.tgz", s.base)), dir.path(), true).unwrap();
    assert_eq!(std::fs::read(dir.path().join("toy/img/a.bin")).unwrap(), a);
    assert_eq!(
        std::fs::read(dir.path().join("toy/img/x/b.bin")).unwrap(),
        b
    );
    assert!(!dir.path().join("toy/README").exists());
}

#[test]
fn paths_that_leave_the_data_directory_are_refused() {
    let ds = dataset(
        &[("../evil.bin", b"x")],
        vec![files_at("http://127.0.0.1:9/none")],
    );
    let dir = tempfile::tempdir().unwrap();
    let e = err(fetch(&ds, dir.path(), true).unwrap_err());
    assert!(e.contains("../evil.bin"), "{e}");
}

/// The built-in data sets: sums parse, every set has sources, the gray PNGs need a mirror.
#[test]
fn the_builtin_data_sets_are_consistent() {
    for name in ride::data::fetch::official::NAMES {
        let ds = ride::data::fetch::official::dataset(name, &[]).unwrap();
        assert!(!ds.files.is_empty(), "{name}");
        assert!(!ds.sources.is_empty(), "{name}");
    }
    let ds = ride::data::fetch::official::dataset("bsds300", &[]).unwrap();
    assert_eq!(ds.files.len(), 402);
    assert_eq!(ds.unavailable.len(), 100, "gray/test PNGs need a mirror");
    assert!(ride::data::fetch::official::dataset("nosuch", &[]).is_err());
}

/// `ride data fetch --mirror` against a loopback mirror of the whole data directory: every
/// file of the three data sets downloaded and verified, then `ride data verify` agrees.
#[test]
#[ignore = "needs the full data sets: make test-data"]
fn the_cli_fetches_and_verifies_every_data_set_from_a_mirror() {
    let s = serve_root(Some(common::full_data_dir()));
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ride"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        println!("{out}{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success());
        out
    };
    let out = run(&["data", "fetch", "--quiet", "--mirror", &s.base]);
    assert!(out.contains("bsds300: 402 files verified"), "{out}");
    assert!(out.contains("vanhateren: 46 files verified"), "{out}");
    assert!(out.contains("brodatz: 111 files verified"), "{out}");
    let out = run(&["data", "verify"]);
    assert!(out.contains("402 of 402") && out.contains("46 of 46") && out.contains("111 of 111"));
    // a second fetch finds everything in place
    let out = run(&["data", "fetch", "--quiet", "--mirror", &s.base]);
    assert!(out.contains("(400 already there, 0 fetched"), "{out}");
}

/// A server that sends more than any file of the data set can be (announced or not) cannot
/// fill the disk; a data directory that is a file is refused before anything is fetched.
#[test]
fn oversized_bodies_and_a_file_as_data_directory_are_refused() {
    let s = serve();
    let a = payload(1_000, 8);
    let big = payload(3 << 20, 9);
    s.route("/l/toy/a.bin", Reply::Ok(big.clone()));
    s.route("/n/toy/a.bin", Reply::NoLength(big));
    let dir = tempfile::tempdir().unwrap();
    for (base, needle) in [("/l/toy", "announces"), ("/n/toy", "sent more than")] {
        let ds = dataset(
            &[("a.bin", &a)],
            vec![files_at(&format!("{}{base}", s.base))],
        );
        let e = err(fetch(&ds, dir.path(), true).unwrap_err());
        assert!(e.contains(needle), "{e}");
        let part = dir.path().join(".download/toy/a.bin.part");
        assert!(!part.exists() || std::fs::metadata(&part).unwrap().len() <= 1 << 20);
    }
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let ds = dataset(&[("a.bin", &a)], vec![files_at(&s.base)]);
    let e = err(fetch(&ds, &file, true).unwrap_err());
    assert!(e.contains("not a directory"), "{e}");
    // credentials never reach a message; mirrors must be http(s) URLs
    assert_eq!(
        ride::data::fetch::http::redact("http://u:secret@host:8/x/y"),
        "http://***@host:8/x/y"
    );
    for bad in ["", "notaurl", "file:///tmp", "http://"] {
        assert!(
            ride::data::fetch::official::dataset("brodatz", &[bad.to_string()]).is_err(),
            "{bad}"
        );
    }
}
