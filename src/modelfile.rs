//! Model files: import of the original code's parameters (npz, layout in
//! `shared/models/README.md`) and our own format (safetensors + metadata), written atomically.

use crate::mcgsm::Mcgsm;
use crate::model::{Preprocessing, Ride};
use crate::neighbourhood::Neighbourhood;
use crate::slstm::SlstmLayer;
use crate::whitening::Whitening;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Format tag and version stored in every model file's metadata.
pub const FORMAT: &str = "ride-model";
pub const FORMAT_VERSION: u32 = 1;

/// Loads a model from `.safetensors` (our format) or `.npz` (the original code's layout).
pub fn load(path: &Path) -> Result<Ride<f32>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => import_npz(path),
        _ => load_safetensors(path),
    }
}

// ---------------------------------------------------------------------------------------------
// npz

/// An opened `.npz` archive; every array is read as f64 with its shape.
pub struct Npz {
    path: String,
    archive: npyz::npz::NpzArchive<std::io::BufReader<std::fs::File>>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
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
        let p = self.path.clone();
        let npy = self
            .archive
            .by_name(key)
            .with_context(|| format!("{p}: array '{key}' is unreadable (truncated file?)"))?
            .ok_or_else(|| anyhow!("{p}: array '{key}' is missing"))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
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
        if v.len() != shape.iter().product::<usize>() {
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

    /// Array `key`, which must have exactly `shape`.
    pub fn expect(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let (s, v) = self.array(key)?;
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if squeeze(&s) != squeeze(shape) {
            bail!(
                "{}: array '{key}' has shape {s:?}, expected {shape:?}",
                self.path
            );
        }
        Ok(v)
    }

    pub fn scalar(&mut self, key: &str) -> Result<f64> {
        Ok(self.expect(key, &[])?[0])
    }
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
    let num_layers = z.scalar("num_layers")? as usize;
    let h = z.scalar("num_hiddens")? as usize;
    let (mshape, input) = z.array("input_mask")?;
    if mshape.len() != 2 {
        bail!(
            "{}: input_mask has shape {mshape:?}, expected 2-D",
            path.display()
        );
    }
    let output = z.expect("output_mask", &mshape)?;
    let nb = Neighbourhood::from_masks(
        mshape[0],
        mshape[1],
        input.iter().map(|&v| v != 0.0).collect(),
        output.iter().map(|&v| v != 0.0).collect(),
    )
    .with_context(|| format!("{}: bad masks", path.display()))?;
    let n = nb.n_inputs();
    let whitening = Whitening {
        n,
        mean_in: z.expect("precond.mean_in", &[n])?,
        mean_out: z.expect("precond.mean_out", &[1])?[0],
        white_in: z.expect("precond.white_in", &[n, n])?,
        white_in_inv: z.expect("precond.white_in_inv", &[n, n])?,
        predictor: z.expect("precond.predictor", &[1, n])?,
        white_out: z.expect("precond.white_out", &[1, 1])?[0],
    };
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
        layers.push(SlstmLayer {
            n_in,
            h,
            extended: false,
            w,
            b,
        });
    }
    let d = z.scalar("mcgsm.dim_in")? as usize;
    let c = z.scalar("mcgsm.num_components")? as usize;
    let s = z.scalar("mcgsm.num_scales")? as usize;
    let f = z.scalar("mcgsm.num_features")? as usize;
    if z.scalar("mcgsm.dim_out")? as usize != 1 {
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
    let mcgsm = Mcgsm {
        d,
        c,
        s,
        f,
        priors: f32v(z.expect("mcgsm.priors", &[c, s])?),
        scales: f32v(z.expect("mcgsm.scales", &[c, s])?),
        weights: f32v(z.expect("mcgsm.weights", &[c, f])?),
        features: f32v(z.expect("mcgsm.features", &[d, f])?),
        predictors: f32v(z.expect("mcgsm.predictors", &[c, d])?),
        linear_features: nonzero(z.expect("mcgsm.linear_features", &[c, d])?),
        means: nonzero(z.expect("mcgsm.means", &[1, c])?),
    };
    Ok(Ride {
        nb,
        whitening,
        layers,
        mcgsm,
        preprocessing: Preprocessing::default(),
    })
}

// ---------------------------------------------------------------------------------------------
// safetensors

fn bytes_f64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Architecture summary stored in the metadata (and checked against the tensors on load).
fn architecture(m: &Ride<f32>) -> serde_json::Value {
    serde_json::json!({
        "nb_rows": m.nb.rows,
        "nb_cols": m.nb.cols,
        "num_inputs": m.nb.n_inputs(),
        "num_layers": m.layers.len(),
        "num_hiddens": m.layers.iter().map(|l| l.h).collect::<Vec<_>>(),
        "extended": m.layers.iter().map(|l| l.extended).collect::<Vec<_>>(),
        "mcgsm": {
            "dim_in": m.mcgsm.d, "num_components": m.mcgsm.c, "num_scales": m.mcgsm.s,
            "num_features": m.mcgsm.f,
            "linear_features": m.mcgsm.linear_features.is_some(), "means": m.mcgsm.means.is_some(),
        },
    })
}

/// Serialises a model to safetensors bytes with metadata.
pub fn to_safetensors(m: &Ride<f32>) -> Result<Vec<u8>> {
    to_safetensors_with(m, &[], &HashMap::new())
}

/// A model plus extra f32 tensors and metadata (training checkpoints: optimiser state and
/// position). [`from_safetensors`] reads such a file as the plain model.
pub fn to_safetensors_with(
    m: &Ride<f32>,
    extra: &[(String, Vec<f32>)],
    extra_meta: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let n = m.nb.n_inputs();
    let mut t: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![];
    let mask = |v: &[bool]| v.iter().map(|&b| b as u8).collect::<Vec<u8>>();
    t.push((
        "mask.input".into(),
        Dtype::U8,
        vec![m.nb.rows, m.nb.cols],
        mask(&m.nb.input),
    ));
    t.push((
        "mask.output".into(),
        Dtype::U8,
        vec![m.nb.rows, m.nb.cols],
        mask(&m.nb.output),
    ));
    let w = &m.whitening;
    t.push((
        "whitening.mean_in".into(),
        Dtype::F64,
        vec![n],
        bytes_f64(&w.mean_in),
    ));
    t.push((
        "whitening.mean_out".into(),
        Dtype::F64,
        vec![1],
        bytes_f64(&[w.mean_out]),
    ));
    t.push((
        "whitening.white_in".into(),
        Dtype::F64,
        vec![n, n],
        bytes_f64(&w.white_in),
    ));
    t.push((
        "whitening.white_in_inv".into(),
        Dtype::F64,
        vec![n, n],
        bytes_f64(&w.white_in_inv),
    ));
    t.push((
        "whitening.predictor".into(),
        Dtype::F64,
        vec![n],
        bytes_f64(&w.predictor),
    ));
    t.push((
        "whitening.white_out".into(),
        Dtype::F64,
        vec![1],
        bytes_f64(&[w.white_out]),
    ));
    for (l, layer) in m.layers.iter().enumerate() {
        t.push((
            format!("slstm.{l}.w"),
            Dtype::F32,
            vec![5 * layer.h, layer.width()],
            bytes_f32(&layer.w),
        ));
        t.push((
            format!("slstm.{l}.b"),
            Dtype::F32,
            vec![5 * layer.h],
            bytes_f32(&layer.b),
        ));
    }
    for (name, shape, data) in m.mcgsm.tensors() {
        t.push((format!("mcgsm.{name}"), Dtype::F32, shape, bytes_f32(data)));
    }
    for (name, data) in extra {
        t.push((name.clone(), Dtype::F32, vec![data.len()], bytes_f32(data)));
    }
    let views = t
        .iter()
        .map(|(name, dt, shape, data)| {
            Ok((name.clone(), TensorView::new(*dt, shape.clone(), data)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    meta.insert("architecture".to_string(), architecture(m).to_string());
    meta.insert(
        "preprocessing".to_string(),
        serde_json::json!({"gray": m.preprocessing.gray, "scale": m.preprocessing.scale})
            .to_string(),
    );
    meta.extend(extra_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Named f32 tensors and the metadata map of a file.
pub type Extras = (Vec<(String, Vec<f32>)>, HashMap<String, String>);

/// Extra tensors and metadata of a file written by [`to_safetensors_with`].
pub fn read_extras(bytes: &[u8], prefix: &str) -> Result<Extras> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow!("truncated or corrupt file: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow!("truncated or corrupt: {e}"))?;
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .map(|n| n.to_string())
        .collect();
    names.sort();
    let mut out = vec![];
    for n in names {
        let t = st.tensor(&n).map_err(|e| anyhow!("tensor '{n}': {e}"))?;
        if t.dtype() != Dtype::F32 {
            bail!("tensor '{n}' is {:?}, expected F32", t.dtype());
        }
        out.push((
            n,
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ));
    }
    Ok((out, header.metadata().clone().unwrap_or_default()))
}

pub fn save_safetensors(m: &Ride<f32>, path: &Path) -> Result<()> {
    write_atomic(path, &to_safetensors(m)?)
}

pub fn load_safetensors(path: &Path) -> Result<Ride<f32>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    from_safetensors(&bytes)
        .with_context(|| format!("{}: not a valid ride model file", path.display()))
}

pub fn from_safetensors(bytes: &[u8]) -> Result<Ride<f32>> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow!("truncated or corrupt file: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow!("truncated or corrupt: {e}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!("metadata 'format' is not '{FORMAT}'");
    }
    let version: u32 = meta
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if version != FORMAT_VERSION {
        bail!("format_version {version} is not supported (this build reads {FORMAT_VERSION})");
    }
    let arch: serde_json::Value = serde_json::from_str(meta.get("architecture").map_or("", |s| s))
        .map_err(|e| anyhow!("metadata 'architecture' is not JSON: {e}"))?;
    let prep: serde_json::Value = serde_json::from_str(meta.get("preprocessing").map_or("", |s| s))
        .map_err(|e| anyhow!("metadata 'preprocessing' is not JSON: {e}"))?;
    let get = |name: &str, dt: Dtype, shape: &[usize]| -> Result<Vec<u8>> {
        let t = st
            .tensor(name)
            .map_err(|_| anyhow!("tensor '{name}' is missing"))?;
        if t.dtype() != dt || t.shape() != shape {
            bail!(
                "tensor '{name}' is {:?}{:?}, expected {dt:?}{shape:?}",
                t.dtype(),
                t.shape()
            );
        }
        Ok(t.data().to_vec())
    };
    let f64s = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
        Ok(get(name, Dtype::F64, shape)?
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    };
    let f32s = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        Ok(get(name, Dtype::F32, shape)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect())
    };
    let us = |k: &str| {
        arch[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| anyhow!("architecture.{k} missing"))
    };
    let (rows, cols) = (us("nb_rows")?, us("nb_cols")?);
    let mask = |name: &str| -> Result<Vec<bool>> {
        Ok(get(name, Dtype::U8, &[rows, cols])?
            .into_iter()
            .map(|b| b != 0)
            .collect())
    };
    let nb = Neighbourhood::from_masks(rows, cols, mask("mask.input")?, mask("mask.output")?)?;
    let n = nb.n_inputs();
    let whitening = Whitening {
        n,
        mean_in: f64s("whitening.mean_in", &[n])?,
        mean_out: f64s("whitening.mean_out", &[1])?[0],
        white_in: f64s("whitening.white_in", &[n, n])?,
        white_in_inv: f64s("whitening.white_in_inv", &[n, n])?,
        predictor: f64s("whitening.predictor", &[n])?,
        white_out: f64s("whitening.white_out", &[1])?[0],
    };
    let hiddens: Vec<usize> = arch["num_hiddens"]
        .as_array()
        .ok_or_else(|| anyhow!("architecture.num_hiddens missing"))?
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| anyhow!("bad num_hiddens"))
        })
        .collect::<Result<_>>()?;
    let extended: Vec<bool> = arch["extended"].as_array().map_or(vec![], |a| {
        a.iter().map(|v| v.as_bool().unwrap_or(false)).collect()
    });
    let mut layers = vec![];
    let mut n_in = n;
    for (l, &h) in hiddens.iter().enumerate() {
        let ext = extended.get(l).copied().unwrap_or(false);
        let width = n_in + if ext { 4 * h } else { 2 * h };
        let w = f32s(&format!("slstm.{l}.w"), &[5 * h, width])?;
        let b = f32s(&format!("slstm.{l}.b"), &[5 * h])?;
        layers.push(SlstmLayer {
            n_in,
            h,
            extended: ext,
            w,
            b,
        });
        n_in = h;
    }
    let mc = &arch["mcgsm"];
    let mu = |k: &str| {
        mc[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| anyhow!("architecture.mcgsm.{k} missing"))
    };
    let (d, c, s, f) = (
        mu("dim_in")?,
        mu("num_components")?,
        mu("num_scales")?,
        mu("num_features")?,
    );
    if d != n_in {
        bail!("mcgsm.dim_in {d} does not match the top layer's width {n_in}");
    }
    let mcgsm = Mcgsm {
        d,
        c,
        s,
        f,
        priors: f32s("mcgsm.priors", &[c, s])?,
        scales: f32s("mcgsm.scales", &[c, s])?,
        weights: f32s("mcgsm.weights", &[c, f])?,
        features: f32s("mcgsm.features", &[d, f])?,
        predictors: f32s("mcgsm.predictors", &[c, d])?,
        linear_features: if mc["linear_features"].as_bool().unwrap_or(false) {
            Some(f32s("mcgsm.linear_features", &[c, d])?)
        } else {
            None
        },
        means: if mc["means"].as_bool().unwrap_or(false) {
            Some(f32s("mcgsm.means", &[c])?)
        } else {
            None
        },
    };
    let preprocessing = Preprocessing {
        gray: prep["gray"].as_str().unwrap_or("pil").to_string(),
        scale: prep["scale"]
            .as_f64()
            .ok_or_else(|| anyhow!("preprocessing.scale missing"))?,
    };
    Ok(Ride {
        nb,
        whitening,
        layers,
        mcgsm,
        preprocessing,
    })
}
