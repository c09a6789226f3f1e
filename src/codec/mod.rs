//! RIDE as a lossless codec for 8-bit gray images (`ride compress` / `ride decompress`).
//!
//! Every pixel is coded with the probability the model gives its 8-bit value (its density
//! integrated over the value's quantisation bin, [`cdf`]), by constriction's range coder,
//! cell by cell in raster order through [`tiles::CodingModel::run_tile`] — one function for
//! both sides, so encoder and decoder compute bit-identical probabilities. Tiles are coded
//! independently and in parallel; each tile's words depend only on its pixels, so the file
//! does not depend on the thread count. The header ([`container`]) names the model by hash
//! and carries checksums of the payload and of the pixels: a wrong model, a corrupt or a
//! truncated file is an error, never a wrong image.

pub mod cdf;
pub mod container;
pub mod tiles;

use crate::io::images::decode_exact_gray8;
use crate::model::raster::RASTER_VERSION;
use crate::model::ride::Ride;
use anyhow::{anyhow, bail, Context, Result};
use cdf::{Alphabet, QuantizedCdf};
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};
use container::{hash16, hex, Header, Mode};
use rayon::prelude::*;
use std::path::Path;
pub use tiles::Gray8;
use tiles::{CellCoder, CodingModel};

/// What compressing one image produced and cost.
#[derive(Clone, Debug)]
pub struct Compressed {
    pub bytes: Vec<u8>,
    pub header_bytes: usize,
    /// −Σ log₂ of the coder's (quantised) probabilities of the pixels.
    pub ideal_bits: f64,
    /// −Σ log₂ of the discrete likelihood (`ride eval --discrete`'s definition) on the same
    /// cells: the model's code length the file is held against.
    pub discrete_bits: f64,
    /// True if the pixels were stored (coding would not have been smaller).
    pub stored: bool,
}

/// Identifies a model: SHA-256 of its canonical file (first 16 bytes).
pub fn model_hash(model: &Ride<f32>) -> Result<[u8; 16]> {
    Ok(hash16(&crate::io::modelfile::to_safetensors(model)?))
}

/// The SIMD level pulp dispatches to on this machine: the per-cell arithmetic (and so the
/// probabilities) may differ between levels.
pub fn simd_level() -> String {
    let arch = format!("{:?}", pulp::Arch::new());
    let level = arch.split('(').next().unwrap_or("?");
    format!("{}-{level}", std::env::consts::ARCH)
}

fn check_model(model: &Ride<f32>) -> Result<()> {
    let p = &model.preprocessing;
    if !p.domain.is_gray8() || p.scale != 255.0 {
        bail!(
            "the codec codes 8-bit gray images with a model of 8-bit values / 255; this model's \
             preprocessing is {} on scale {}",
            p.domain.name(),
            p.scale
        );
    }
    Ok(())
}

struct Encoder {
    enc: DefaultRangeEncoder,
    ideal_bits: f64,
    discrete_bits: f64,
}

impl CellCoder for Encoder {
    fn code(&mut self, cell: &QuantizedCdf, known: Option<usize>) -> Result<usize> {
        let i = known.context("the encoder needs the pixel values")?;
        self.enc
            .encode_symbol(i, cell.model())
            .map_err(|e| anyhow!("range coder: {e:?}"))?;
        self.ideal_bits -= cell.probability(i).log2();
        self.discrete_bits -= cell.discrete_probability(cell.value(i) as usize).log2();
        Ok(i)
    }
}

struct Decoder {
    dec: DefaultRangeDecoder,
}

impl CellCoder for Decoder {
    fn code(&mut self, cell: &QuantizedCdf, _known: Option<usize>) -> Result<usize> {
        self.dec
            .decode_symbol(cell.model())
            .map_err(|e| anyhow!("corrupt payload: the range decoder failed ({e:?})"))
    }
}

fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Compresses `img` with `model` in tiles of `tile` pixels (0: one tile).
pub fn compress(model: &Ride<f32>, img: &Gray8, tile: usize) -> Result<Compressed> {
    check_model(model)?;
    if img.h == 0 || img.w == 0 || img.pixels.len() != img.h * img.w {
        bail!(
            "an image of {}×{} with {} pixels",
            img.w,
            img.h,
            img.pixels.len()
        );
    }
    let cm = CodingModel::new(model);
    let alphabet = Alphabet::of_pixels(&img.pixels).context("an image without pixels")?;
    if tile != 0 && tile < cm.min_tile() {
        bail!(
            "tile size {tile} is smaller than the model's {}×{} neighbourhood (use ≥ {} or 0 for one tile)",
            model.nb.rows,
            model.nb.cols,
            cm.min_tile()
        );
    }
    let parts = tiles::tiles(img.h, img.w, tile)
        .par_iter()
        .map(|&t| -> Result<(Vec<u8>, f64, f64)> {
            let mut e = Encoder {
                enc: DefaultRangeEncoder::new(),
                ideal_bits: 0.0,
                discrete_bits: 0.0,
            };
            cm.run_tile(t, tile, &alphabet, img, true, &mut e)?;
            let words = e
                .enc
                .into_compressed()
                .map_err(|e| anyhow!("range coder: {e:?}"))?;
            Ok((words_to_bytes(&words), e.ideal_bits, e.discrete_bits))
        })
        .collect::<Result<Vec<_>>>()?;
    let ideal_bits = parts.iter().map(|p| p.1).sum();
    let discrete_bits = parts.iter().map(|p| p.2).sum();
    let coded: usize = parts.iter().map(|p| p.0.len()).sum();
    let stored = coded >= img.pixels.len();
    let (payload, tile_bytes): (Vec<u8>, Vec<u32>) = if stored {
        (img.pixels.clone(), vec![img.pixels.len() as u32])
    } else {
        (
            parts.iter().flat_map(|p| p.0.iter().copied()).collect(),
            parts.iter().map(|p| p.0.len() as u32).collect(),
        )
    };
    let header = Header {
        raster_version: RASTER_VERSION as u16,
        model_hash: model_hash(model)?,
        simd: simd_level(),
        h: img.h as u32,
        w: img.w as u32,
        tile: tile as u32,
        mode: if stored {
            Mode::Stored
        } else {
            Mode::RangeCoded
        },
        pad: cm.pad,
        values: alphabet.mask(),
        tile_bytes,
        payload_hash: hash16(&payload),
        image_hash: hash16(&img.pixels),
    };
    let mut bytes = header.to_bytes();
    let header_bytes = bytes.len();
    bytes.extend_from_slice(&payload);
    Ok(Compressed {
        bytes,
        header_bytes,
        ideal_bits,
        discrete_bits,
        stored,
    })
}

/// Decompresses a file made by [`compress`] with the same model.
pub fn decompress(model: &Ride<f32>, bytes: &[u8]) -> Result<Gray8> {
    check_model(model)?;
    let (header, payload) = Header::parse(bytes)?;
    let hash = model_hash(model)?;
    if header.model_hash != hash {
        bail!(
            "the file was compressed with model {}, this model is {}: decode it with the model it was made with",
            hex(&header.model_hash),
            hex(&hash)
        );
    }
    if header.raster_version != RASTER_VERSION as u16 {
        bail!(
            "the file was made by a ride whose per-cell arithmetic is version {}, this one has version {RASTER_VERSION}",
            header.raster_version
        );
    }
    let (h, w) = (header.h as usize, header.w as usize);
    let pixels = match header.mode {
        Mode::Stored => {
            if payload.len() != h * w {
                bail!(
                    "corrupt file: {} stored bytes for {w}×{h} pixels",
                    payload.len()
                );
            }
            payload.to_vec()
        }
        Mode::RangeCoded => {
            let cm = CodingModel::new(model);
            if cm.pad != header.pad {
                bail!(
                    "corrupt header: pad value {} (the model's is {})",
                    header.pad,
                    cm.pad
                );
            }
            let t = header.tile as usize;
            if t != 0 && t < cm.min_tile() {
                bail!("corrupt header: tile size {t}");
            }
            let alphabet =
                Alphabet::from_mask(&header.values).context("corrupt header: no pixel values")?;
            let ts = tiles::tiles(h, w, t);
            let mut starts = Vec::with_capacity(ts.len());
            let mut pos = 0usize;
            for &b in &header.tile_bytes {
                if b % 4 != 0 {
                    bail!("corrupt header: a tile of {b} bytes (a multiple of 4 expected)");
                }
                starts.push(pos);
                pos += b as usize;
            }
            // the image so far: each wave's tiles read only tiles of earlier waves
            let mut img = Gray8 {
                h,
                w,
                pixels: vec![0u8; h * w],
            };
            for wave in tiles::waves(&ts) {
                let decoded = wave
                    .par_iter()
                    .map(|&k| -> Result<Vec<u8>> {
                        let b = header.tile_bytes[k] as usize;
                        let words: Vec<u32> = payload[starts[k]..starts[k] + b]
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        let dec = DefaultRangeDecoder::from_compressed(words)
                            .map_err(|e| anyhow!("corrupt payload: {e:?}"))?;
                        cm.run_tile(ts[k], t, &alphabet, &img, false, &mut Decoder { dec })
                    })
                    .collect::<Result<Vec<_>>>()?;
                for (&k, d) in wave.iter().zip(&decoded) {
                    let tl = ts[k];
                    for i in 0..tl.h {
                        let row = (tl.r0 + i) * w + tl.c0;
                        img.pixels[row..row + tl.w].copy_from_slice(&d[i * tl.w..(i + 1) * tl.w]);
                    }
                }
            }
            img.pixels
        }
    };
    if hash16(&pixels) != header.image_hash {
        let here = simd_level();
        let why = if header.simd != here {
            format!(
                "the file was encoded with SIMD level {} and this machine runs {here}, whose arithmetic differs",
                header.simd
            )
        } else {
            "the file is corrupt".to_string()
        };
        bail!("the decoded pixels do not match the encoder's checksum: {why}");
    }
    Ok(Gray8 { h, w, pixels })
}

/// Reads an image file whose pixels are exactly 8-bit gray (a gray PNG, or any colour image
/// whose pixels all have R = G = B and full opacity); anything else would not round-trip.
pub fn read_image(path: &Path) -> Result<Gray8> {
    let (h, w, pixels) = decode_exact_gray8(path)?;
    Ok(Gray8 { h, w, pixels })
}

/// Writes an 8-bit gray PNG (atomically).
pub fn write_png(path: &Path, img: &Gray8) -> Result<()> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(img.w as u32, img.h as u32, img.pixels.clone())
        .context("image buffer has the wrong size")?
        .write_to(&mut out, image::ImageFormat::Png)?;
    crate::io::files::write_atomic(path, &out.into_inner())
}
