//! Model files: import of the original code's parameters (npz, layout in
//! `shared/models/README.md`; [`npz`]) and our own format (safetensors + metadata, written
//! atomically; [`safetensors_format`]).

mod npz;
mod safetensors_format;

pub use npz::{import_npz, Npz};
pub use safetensors_format::{
    from_safetensors, load_safetensors, read_extras, save_safetensors, to_safetensors,
    to_safetensors_with, Extras,
};

use crate::io::files::read_bounded;
use crate::io::preprocessing::{Domain, Preprocessing};
use crate::limits as lim;
use crate::model::ride::Ride;
use anyhow::{Context, Result};
use safetensors_format::from_safetensors_as;
use std::path::Path;

/// Format tag and version stored in every model file's metadata.
pub const FORMAT: &str = "ride-model";
/// 2: the preprocessing records its data domain (format 1 claimed PIL gray / 255 for every
/// model, the van Hateren log-domain ones included).
pub const FORMAT_VERSION: u32 = 2;

/// Loads a model from `.safetensors` (our format) or `.npz` (the original code's layout).
///
/// Every model is checked by [`Ride::validate`] (sizes within [`crate::limits`], every number
/// finite, a known preprocessing) before it is returned.
pub fn load(path: &Path) -> Result<Ride<f32>> {
    load_as(path, None)
}

/// [`load`]; `domain` sets the preprocessing of files that do not record one (the original
/// code's npz, our format-1 files): the npz default is `bsds300`, format-1 files need it.
pub fn load_as(path: &Path, domain: Option<Domain>) -> Result<Ride<f32>> {
    // the format by content (an npz is a zip: "PK\x03\x04"), whatever the extension says
    let is_zip = {
        use std::io::Read;
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && magic == *b"PK\x03\x04"
    };
    let mut m = match is_zip {
        true => import_npz(path)?,
        false => {
            let bytes = read_bounded(path, MAX_MODEL_BYTES, "model file")?;
            from_safetensors_as(&bytes, domain)
                .with_context(|| format!("{}: not a valid ride model file", path.display()))?
        }
    };
    if let Some(d) = domain {
        m.preprocessing = Preprocessing::gray8(d);
    }
    m.validate()
        .with_context(|| format!("{}: unusable model", path.display()))?;
    Ok(m)
}

/// Largest model or checkpoint file read (the parameter limit in f32 plus metadata).
pub const MAX_MODEL_BYTES: u64 = (lim::MAX_PARAMS as u64) * 8 + (1 << 24);
