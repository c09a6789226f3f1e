//! Embeds the source's git commit in the binary (RIDE_GIT_COMMIT), so every result file names
//! the code that produced it ("-dirty" when the files the binary is built from — src/, assets/,
//! build.rs, Cargo.toml, Cargo.lock — had uncommitted changes; results and configs written or
//! edited beside a running campaign do not count: configs are recorded by their own hash).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let dirty = Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "src",
            "assets",
            "build.rs",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    let value = match commit {
        Some(c) => format!("{c}{}", if dirty { "-dirty" } else { "" }),
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=RIDE_GIT_COMMIT={value}");
    for p in [".git/HEAD", ".git/index", "src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={p}");
    }
}
