//! Import of the original code's trained models: its parameters as an `.npz` archive (layout in
//! `shared/models/README.md`), every zip member's CRC checked.

use super::MAX_MODEL_BYTES;
use crate::io::preprocessing::{Domain, Preprocessing};
use crate::limits as lim;
use crate::model::mcgsm::{Mcgsm, McgsmParts};
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::Ride;
use crate::model::slstm::SlstmLayer;
use crate::model::whitening::Whitening;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// An opened `.npz` archive; every array is read as f64 with its shape.
pub struct Npz {
    path: String,
    archive: npyz::npz::NpzArchive<std::io::BufReader<std::fs::File>>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let m = std::fs::metadata(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        if !m.is_file() || m.len() > MAX_MODEL_BYTES {
            bail!(
                "{}: not a regular file of at most {MAX_MODEL_BYTES} bytes",
                path.display()
            );
        }
        check_zip_crcs(path)?;
        let archive = npyz::npz::NpzArchive::open(path).with_context(|| {
            format!(
                "{}: not a readable npz archive (truncated or corrupt?)",
                path.display()
            )
        })?;
        Ok(Self {
            path: path.display().to_string(),
            archive,
        })
    }

    /// Array `key` as (shape, values in f64). Missing or unreadable arrays name the key.
    pub fn array(&mut self, key: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        self.array_shaped(key, None)
    }

    /// [`Self::array`], refused before reading when its shape is not `want` (size-1 axes
    /// ignored).
    fn array_shaped(
        &mut self,
        key: &str,
        want: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<f64>)> {
        let p = self.path.clone();
        let npy = self
            .archive
            .by_name(key)
            .with_context(|| format!("{p}: array '{key}' is unreadable (truncated file?)"))?
            .ok_or_else(|| anyhow!("{p}: array '{key}' is missing"))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
        // the header's shape bounds the allocation: check it before reading any data
        let count = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= lim::MAX_PARAMS)
            .ok_or_else(|| anyhow!("{p}: array '{key}' has an absurd shape {shape:?}"))?;
        if let Some(want) = want {
            let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
            if squeeze(&shape) != squeeze(want) {
                bail!("{p}: array '{key}' has shape {shape:?}, expected {want:?}");
            }
        }
        let fortran = npy.order() == npyz::Order::Fortran;
        let npyz::DType::Plain(ts) = npy.dtype() else {
            bail!("{p}: array '{key}' has a structured dtype");
        };
        let bytes = ts.num_bytes().unwrap_or(0);
        let ctx = || format!("{p}: array '{key}' could not be read (truncated file?)");
        let v: Vec<f64> = match (ts.type_char(), bytes) {
            (npyz::TypeChar::Float, 8) => npy.into_vec::<f64>().with_context(ctx)?,
            (npyz::TypeChar::Float, 4) => npy
                .into_vec::<f32>()
                .with_context(ctx)?
                .into_iter()
                .map(f64::from)
                .collect(),
            (npyz::TypeChar::Int, 8) => npy
                .into_vec::<i64>()
                .with_context(ctx)?
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            (npyz::TypeChar::Int, 4) => npy
                .into_vec::<i32>()
                .with_context(ctx)?
                .into_iter()
                .map(f64::from)
                .collect(),
            (npyz::TypeChar::Bool, 1) => npy
                .into_vec::<bool>()
                .with_context(ctx)?
                .into_iter()
                .map(|b| b as u8 as f64)
                .collect(),
            (tc, n) => bail!("{p}: array '{key}' has unsupported dtype {tc:?}{n}"),
        };
        if v.len() != count {
            bail!(
                "{p}: array '{key}' is truncated ({} values for shape {shape:?})",
                v.len()
            );
        }
        // cmt's arrays come from Eigen and are saved in Fortran order: return row-major always.
        Ok((
            shape.clone(),
            if fortran { fortran_to_c(&v, &shape) } else { v },
        ))
    }

    /// Array `key`, which must have exactly `shape`; every value must be finite.
    pub fn expect(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let (_, v) = self.array_shaped(key, Some(shape))?;
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            bail!("{}: array '{key}'[{k}] is {} (not finite)", self.path, v[k]);
        }
        Ok(v)
    }

    pub fn scalar(&mut self, key: &str) -> Result<f64> {
        Ok(self.expect(key, &[])?[0])
    }

    /// A scalar that is a whole number in `lo..=hi` (a size), checked before it sizes anything.
    pub fn count(&mut self, key: &str, lo: usize, hi: usize) -> Result<usize> {
        let v = self.scalar(key)?;
        if v.fract() != 0.0 || v < lo as f64 || v > hi as f64 {
            bail!(
                "{}: '{key}' = {v} is not a whole number between {lo} and {hi}",
                self.path
            );
        }
        Ok(v as usize)
    }
}

/// Reads every member of a zip archive to its end, so that its CRC-32 is checked: npyz reads
/// only what it needs and would accept flipped bytes.
fn check_zip_crcs(path: &Path) -> Result<()> {
    let bad = || {
        format!(
            "{}: not a readable npz archive (truncated or corrupt?)",
            path.display()
        )
    };
    let f = std::fs::File::open(path).with_context(bad)?;
    let mut z = zip::ZipArchive::new(std::io::BufReader::new(f)).with_context(bad)?;
    for i in 0..z.len() {
        let mut member = z.by_index(i).with_context(bad)?;
        let name = member.name().to_string();
        if member.size() > MAX_MODEL_BYTES {
            bail!("{}: member {name} is too large", path.display());
        }
        std::io::copy(&mut member, &mut std::io::sink()).with_context(|| {
            format!(
                "{}: member {name} is corrupt (checksum or compressed data)",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Reorders a Fortran-order (first index fastest) array into C order (last index fastest).
fn fortran_to_c(v: &[f64], shape: &[usize]) -> Vec<f64> {
    let n = v.len();
    let mut out = vec![0.0; n];
    let mut idx = vec![0usize; shape.len()];
    for (c_pos, slot) in out.iter_mut().enumerate() {
        // C-order position → multi-index → Fortran-order position
        let mut rem = c_pos;
        for a in (0..shape.len()).rev() {
            idx[a] = rem % shape[a];
            rem /= shape[a];
        }
        let mut f_pos = 0;
        for a in (0..shape.len()).rev() {
            f_pos = f_pos * shape[a] + idx[a];
        }
        *slot = v[f_pos];
    }
    out
}

/// Imports a model trained by the original code (Python + Caffe + cmt) from its npz export.
pub fn import_npz(path: &Path) -> Result<Ride<f32>> {
    let mut z = Npz::open(path)?;
    let num_layers = z.count("num_layers", 1, lim::MAX_LAYERS)?;
    let h = z.count("num_hiddens", 1, lim::MAX_HIDDENS)?;
    let (mshape, input) = z.array("input_mask")?;
    if mshape.len() != 2 || mshape.iter().any(|&d| d == 0 || d > lim::MAX_NB_SIZE) {
        bail!(
            "{}: input_mask has shape {mshape:?}, expected 2-D of at most {} per side",
            path.display(),
            lim::MAX_NB_SIZE
        );
    }
    let output = z.expect("output_mask", &mshape)?;
    // the scalars must describe the masks: a contradiction means a damaged or foreign file
    if z.count("nb_size", 1, lim::MAX_NB_SIZE)? != mshape[1] {
        bail!(
            "{}: nb_size does not match the {}×{} masks",
            path.display(),
            mshape[0],
            mshape[1]
        );
    }
    if z.count("num_channels", 1, 1)? != 1 {
        bail!(
            "{}: only single-channel (gray) models are supported",
            path.display()
        );
    }
    let nb = Neighbourhood::from_masks(
        mshape[0],
        mshape[1],
        input.iter().map(|&v| v != 0.0).collect(),
        output.iter().map(|&v| v != 0.0).collect(),
    )
    .with_context(|| format!("{}: bad masks", path.display()))?;
    let n = nb.n_inputs();
    // the original stores the same tensors as `precond.*`, B and P_out as matrices
    let whitening = Whitening::read(n, |name, shape| match name {
        "predictor" => z.expect("precond.predictor", &[1, n]),
        "white_out" => z.expect("precond.white_out", &[1, 1]),
        _ => z.expect(&format!("precond.{name}"), shape),
    })?;
    let lj = z.scalar("precond.log_jacobian")?;
    if (lj - whitening.log_jacobian()).abs() > 1e-9 * lj.abs().max(1.0) {
        bail!(
            "{}: precond.log_jacobian {lj} disagrees with log|white_out| {}",
            path.display(),
            whitening.log_jacobian()
        );
    }
    let mut layers = Vec::with_capacity(num_layers);
    for l in 0..num_layers {
        let n_in = if l == 0 { n } else { h };
        let wd = n_in + 2 * h;
        let mut w = Vec::with_capacity(5 * h * wd);
        let mut b = Vec::with_capacity(5 * h);
        // Our gate order g, i, f_r, f_c, o = the original's W_g, W_i, W_f_i, W_f_j, W_o.
        for gate in ["g", "i", "f_i", "f_j", "o"] {
            w.extend(
                z.expect(&format!("slstm.{l}.W_{gate}"), &[h, wd])?
                    .into_iter()
                    .map(|v| v as f32),
            );
            b.extend(
                z.expect(&format!("slstm.{l}.b_{gate}"), &[h])?
                    .into_iter()
                    .map(|v| v as f32),
            );
        }
        layers.push(SlstmLayer::from_parts(n_in, h, false, w, b)?);
    }
    let d = z.count("mcgsm.dim_in", 1, lim::MAX_HIDDENS)?;
    let c = z.count("mcgsm.num_components", 1, lim::MAX_COMPONENTS)?;
    let s = z.count("mcgsm.num_scales", 1, lim::MAX_SCALES)?;
    let f = z.count("mcgsm.num_features", 1, lim::MAX_FEATURES)?;
    if z.scalar("mcgsm.dim_out")? != 1.0 {
        bail!("{}: only 1-D MCGSM outputs are supported", path.display());
    }
    if d != h {
        bail!(
            "{}: mcgsm.dim_in {d} does not match num_hiddens {h}",
            path.display()
        );
    }
    let chol = z.expect("mcgsm.cholesky", &[c, 1, 1])?;
    if chol.iter().any(|&v| (v - 1.0).abs() > 1e-12) {
        bail!(
            "{}: mcgsm.cholesky must be all 1 for a 1-D output",
            path.display()
        );
    }
    let f32v = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let nonzero = |v: Vec<f64>| v.iter().any(|&x| x != 0.0).then(|| f32v(v));
    let mcgsm = Mcgsm::from_parts(
        (d, c, s, f),
        McgsmParts {
            priors: f32v(z.expect("mcgsm.priors", &[c, s])?),
            scales: f32v(z.expect("mcgsm.scales", &[c, s])?),
            weights: f32v(z.expect("mcgsm.weights", &[c, f])?),
            features: f32v(z.expect("mcgsm.features", &[d, f])?),
            predictors: f32v(z.expect("mcgsm.predictors", &[c, d])?),
            linear_features: nonzero(z.expect("mcgsm.linear_features", &[c, d])?),
            means: nonzero(z.expect("mcgsm.means", &[1, c])?),
        },
    )?;
    Ok(Ride {
        nb,
        whitening,
        layers,
        mcgsm,
        // the original code's BSDS300 convention (shared/models/README.md)
        preprocessing: Preprocessing::gray8(Domain::Bsds300),
    })
}

// ---------------------------------------------------------------------------------------------
// safetensors
