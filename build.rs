//! Embeds the source's git commit in the binary (RIDE_GIT_COMMIT), so every result file names
//! the code that produced it ("-dirty" when tracked files had uncommitted changes).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
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
