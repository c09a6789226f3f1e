//! The compressed file: a header that makes every mismatch a clear error, then the tiles'
//! range-coded words.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `RIDEcodc` |
//! | 2 | format version ([`FORMAT_VERSION`]) |
//! | 2 | per-cell arithmetic version (`model::raster::RASTER_VERSION`) |
//! | 16 | model hash (SHA-256 of the model's canonical file, first 16 bytes) |
//! | 1 + n | SIMD level of the encoder (length, ASCII) |
//! | 4, 4, 4 | height, width, tile size (0: the whole image is one tile) |
//! | 1 | mode: 0 range-coded, 1 stored (raw bytes, when coding would not be smaller) |
//! | 1 | pad value of the tiles' margins |
//! | 32 | the values the image uses (a bit per value, value v in bit v % 8 of byte v / 8) |
//! | 4 + 4·n | number of tiles n, each tile's payload bytes |
//! | 16 | SHA-256 of the payload (first 16 bytes): corruption is found before decoding |
//! | 16 | SHA-256 of the pixels (first 16 bytes): the decoded image is checked against it |
//! | … | payload |

use crate::limits::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub const MAGIC: [u8; 8] = *b"RIDEcodc";
/// 1: the first format.
pub const FORMAT_VERSION: u16 = 1;

/// How the payload holds the pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    RangeCoded = 0,
    Stored = 1,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub raster_version: u16,
    pub model_hash: [u8; 16],
    pub simd: String,
    pub h: u32,
    pub w: u32,
    pub tile: u32,
    pub mode: Mode,
    pub pad: u8,
    pub values: [bool; 256],
    pub tile_bytes: Vec<u32>,
    pub payload_hash: [u8; 16],
    pub image_hash: [u8; 16],
}

/// First 16 bytes of SHA-256.
pub fn hash16(bytes: &[u8]) -> [u8; 16] {
    let d = Sha256::digest(bytes);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

impl Header {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(96 + 4 * self.tile_bytes.len());
        v.extend_from_slice(&MAGIC);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&self.raster_version.to_le_bytes());
        v.extend_from_slice(&self.model_hash);
        v.push(self.simd.len() as u8);
        v.extend_from_slice(&self.simd.as_bytes()[..self.simd.len().min(255)]);
        for x in [self.h, self.w, self.tile] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.push(self.mode as u8);
        v.push(self.pad);
        let mut bits = [0u8; 32];
        for (k, &used) in self.values.iter().enumerate() {
            if used {
                bits[k / 8] |= 1 << (k % 8);
            }
        }
        v.extend_from_slice(&bits);
        v.extend_from_slice(&(self.tile_bytes.len() as u32).to_le_bytes());
        for b in &self.tile_bytes {
            v.extend_from_slice(&b.to_le_bytes());
        }
        v.extend_from_slice(&self.payload_hash);
        v.extend_from_slice(&self.image_hash);
        v
    }

    /// Parses and checks a file: the header's fields, then that the payload has exactly the
    /// length the header promises and the hash it records. Returns the header and the payload.
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8])> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            bail!("not a ride-compressed file (no RIDEcodc signature)");
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            bail!("format version {version}: this ride reads version {FORMAT_VERSION}");
        }
        let raster_version = r.u16()?;
        let mut model_hash = [0u8; 16];
        model_hash.copy_from_slice(r.take(16)?);
        let n = r.take(1)?[0] as usize;
        let simd = String::from_utf8_lossy(r.take(n)?).into_owned();
        let (h, w, tile) = (r.u32()?, r.u32()?, r.u32()?);
        if h == 0 || w == 0 || h as usize > MAX_IMAGE_SIDE || w as usize > MAX_IMAGE_SIDE {
            bail!("corrupt header: image size {w}×{h}");
        }
        if (h as usize) * (w as usize) > MAX_IMAGE_PIXELS {
            bail!("corrupt header: {w}×{h} is more than {MAX_IMAGE_PIXELS} pixels");
        }
        let mode = match r.take(1)?[0] {
            0 => Mode::RangeCoded,
            1 => Mode::Stored,
            m => bail!("corrupt header: unknown mode {m}"),
        };
        let pad = r.take(1)?[0];
        let bits = r.take(32)?;
        let mut values = [false; 256];
        for (k, v) in values.iter_mut().enumerate() {
            *v = bits[k / 8] & (1 << (k % 8)) != 0;
        }
        let n_tiles = r.u32()? as usize;
        let expected = super::tiles::tiles(h as usize, w as usize, tile as usize).len();
        let expected = if mode == Mode::Stored { 1 } else { expected };
        if n_tiles != expected {
            bail!("corrupt header: {n_tiles} tiles for a {w}×{h} image in tiles of {tile} (expected {expected})");
        }
        let tile_bytes = (0..n_tiles)
            .map(|_| r.u32())
            .collect::<Result<Vec<u32>>>()?;
        let mut payload_hash = [0u8; 16];
        payload_hash.copy_from_slice(r.take(16)?);
        let mut image_hash = [0u8; 16];
        image_hash.copy_from_slice(r.take(16)?);
        let total: u64 = tile_bytes.iter().map(|&b| b as u64).sum();
        let payload = &bytes[r.pos..];
        if (payload.len() as u64) < total {
            bail!(
                "truncated: the payload has {} bytes, the header promises {total}",
                payload.len()
            );
        }
        if payload.len() as u64 > total {
            bail!(
                "corrupt file: {} bytes after the {total} the header promises",
                payload.len() as u64 - total
            );
        }
        if hash16(payload) != payload_hash {
            bail!("corrupt payload: its checksum does not match the header's");
        }
        let header = Self {
            raster_version,
            model_hash,
            simd,
            h,
            w,
            tile,
            mode,
            pad,
            values,
            tile_bytes,
            payload_hash,
            image_hash,
        };
        Ok((header, payload))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).context("corrupt header")?;
        let s = self.bytes.get(self.pos..end).with_context(|| {
            format!(
                "truncated: the file ends inside its header ({} bytes)",
                self.bytes.len()
            )
        })?;
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
