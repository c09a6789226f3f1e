//! The standard lossless codecs the RIDE codec is held against, run as the Debian tools
//! `make codec-tools` installs: PNG at maximum compression (`optipng -o7`), WebP lossless
//! (`cwebp -lossless -z 9`), JPEG XL lossless (`cjxl -d 0 -e 9`). Each file is decoded again
//! (`dwebp` to PNG, `djxl` to PGM, our PNG reader) and must reproduce the pixels exactly.

use crate::codec::Gray8;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A standard codec: its id in configs, label, and the tools it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum External {
    Png,
    Webp,
    Jxl,
}

impl std::str::FromStr for External {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "png" => Ok(Self::Png),
            "webp" => Ok(Self::Webp),
            "jxl" => Ok(Self::Jxl),
            _ => bail!("unknown codec '{s}' (known: png, webp, jxl)"),
        }
    }
}

impl External {
    pub fn id(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Jxl => "jxl",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Png => "PNG (optipng -o7)",
            Self::Webp => "WebP lossless (cwebp -z 9)",
            Self::Jxl => "JPEG XL lossless (cjxl -e 9)",
        }
    }

    fn tools(self) -> &'static [&'static str] {
        match self {
            Self::Png => &["optipng"],
            Self::Webp => &["cwebp", "dwebp"],
            Self::Jxl => &["cjxl", "djxl"],
        }
    }

    /// An error naming the missing tool and how to get it, if one is not on PATH.
    pub fn check_tools(self) -> Result<()> {
        for t in self.tools() {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
                .unwrap_or(false);
            if !found {
                bail!("{t} is not on PATH: run `make codec-tools` (installs Debian's optipng, webp and libjxl-tools)");
            }
        }
        Ok(())
    }

    /// Codes `img` (written as a gray PNG into `dir`) and decodes it again: (file bytes,
    /// encode seconds, decode seconds). Times are wall-clock of the tools' processes.
    pub fn run(self, img: &Gray8, dir: &Path) -> Result<(usize, f64, f64)> {
        let src = dir.join("input.png");
        crate::codec::write_png(&src, img)?;
        let (file, decoded) = match self {
            Self::Png => (dir.join("out.png"), dir.join("out.png")),
            Self::Webp => (dir.join("out.webp"), dir.join("decoded.png")),
            Self::Jxl => (dir.join("out.jxl"), dir.join("decoded.pgm")),
        };
        let _ = std::fs::remove_file(&file);
        let t0 = Instant::now();
        match self {
            Self::Png => tool("optipng", &["-o7", "-quiet", "-out", p(&file), p(&src)])?,
            Self::Webp => tool(
                "cwebp",
                &["-lossless", "-z", "9", "-quiet", p(&src), "-o", p(&file)],
            )?,
            Self::Jxl => tool(
                "cjxl",
                &[p(&src), p(&file), "-d", "0", "-e", "9", "--quiet"],
            )?,
        }
        let enc = t0.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&file)
            .with_context(|| format!("{} wrote no {}", self.id(), file.display()))?
            .len() as usize;
        let t0 = Instant::now();
        let back = match self {
            Self::Png => crate::codec::read_image(&file)?,
            Self::Webp => {
                // dwebp's -pgm writes YUV planes; its PNG holds the gray image as RGB(A)
                tool("dwebp", &[p(&file), "-quiet", "-o", p(&decoded)])?;
                crate::codec::read_image(&decoded)?
            }
            Self::Jxl => {
                tool("djxl", &[p(&file), p(&decoded), "--quiet"])?;
                read_pgm(&decoded)?
            }
        };
        let dec = t0.elapsed().as_secs_f64();
        if back != *img {
            bail!(
                "{} did not reproduce the image exactly: not a lossless result",
                self.label()
            );
        }
        Ok((bytes, enc, dec))
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

fn tool(name: &str, args: &[&str]) -> Result<()> {
    let o = Command::new(name)
        .args(args)
        .output()
        .with_context(|| format!("running {name}"))?;
    if !o.status.success() {
        bail!(
            "{name} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// An 8-bit binary PGM (P5), as djxl writes it.
fn read_pgm(path: &Path) -> Result<Gray8> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bad = || anyhow::anyhow!("{}: not an 8-bit binary PGM", path.display());
    // four whitespace-separated fields: P5, width, height, maxval; one whitespace byte; pixels
    let mut fields = vec![];
    let mut i = 0;
    while fields.len() < 4 {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if s == i {
            return Err(bad());
        }
        fields.push(String::from_utf8_lossy(&b[s..i]).into_owned());
    }
    let num = |k: usize| fields[k].parse::<usize>().map_err(|_| bad());
    if fields[0] != "P5" || num(3)? != 255 {
        return Err(bad());
    }
    let (w, h) = (num(1)?, num(2)?);
    let px = b.get(i + 1..).ok_or_else(bad)?;
    if px.len() != w * h {
        return Err(bad());
    }
    Ok(Gray8 {
        h,
        w,
        pixels: px.to_vec(),
    })
}
