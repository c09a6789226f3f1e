//! Model files: import of the original code's parameters (npz, layout in
//! `shared/models/README.md`) and our own format (safetensors + metadata), written atomically.

use crate::io::preprocessing::{Domain, Preprocessing};
use crate::limits as lim;
use crate::model::mcgsm::Mcgsm;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::Ride;
use crate::model::slstm::SlstmLayer;
use crate::model::whitening::Whitening;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
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

// ---------------------------------------------------------------------------------------------
// npz

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
        // the original code's BSDS300 convention (shared/models/README.md)
        preprocessing: Preprocessing::gray8(Domain::Bsds300),
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
    meta.insert("preprocessing".to_string(), m.preprocessing.to_json());
    meta.extend(extra_meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
/// Every step is checked; on any failure the temporary file is removed and `path` is untouched.
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
    // the rename would replace whatever is there: never a device, a FIFO or a folder
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            bail!(
                "{}: exists and is not a regular file; refusing to replace it",
                path.display()
            );
        }
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot flush {}", path.display()))?;
        drop(f);
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temporary files of [`write_atomic`] left in `dir` by processes that were killed
/// (`.NAME.tmpPID` whose PID is not running).
pub fn remove_stale_temps(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp"))
            .map(|(_, pid)| pid)
        else {
            continue;
        };
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads a regular file of at most `limit` bytes (model files, configs): devices, FIFOs and
/// absurdly large files are errors, not endless reads.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let m = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !m.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if m.len() > limit {
        bail!(
            "{}: {} bytes is larger than any {what} ({limit} bytes at most)",
            path.display(),
            m.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Largest model or checkpoint file read (the parameter limit in f32 plus metadata).
pub const MAX_MODEL_BYTES: u64 = (lim::MAX_PARAMS as u64) * 8 + (1 << 24);

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
    load_as(path, None)
}

/// The architecture metadata, parsed strictly (every key required, unknown keys are errors).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Architecture {
    nb_rows: usize,
    nb_cols: usize,
    num_inputs: usize,
    num_layers: usize,
    num_hiddens: Vec<usize>,
    extended: Vec<bool>,
    mcgsm: McgsmArchitecture,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct McgsmArchitecture {
    dim_in: usize,
    num_components: usize,
    num_scales: usize,
    num_features: usize,
    linear_features: bool,
    means: bool,
}

/// A model from safetensors bytes (format 2); the result is not yet [`Ride::validate`]d.
pub fn from_safetensors(bytes: &[u8]) -> Result<Ride<f32>> {
    from_safetensors_as(bytes, None)
}

fn from_safetensors_as(bytes: &[u8], legacy_domain: Option<Domain>) -> Result<Ride<f32>> {
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
    let preprocessing = match (version, legacy_domain) {
        (FORMAT_VERSION, _) => Preprocessing::from_json(meta.get("preprocessing").map_or("", |s| s))?,
        (1, Some(d)) => Preprocessing::gray8(d),
        (1, None) => bail!(
            "format_version 1 does not record the data domain of its preprocessing; re-save it with \
             `ride convert --model FILE --domain DOMAIN --out NEW` (domains: {})",
            Domain::ALL.map(|d| d.name()).join(", ")
        ),
        (v, _) => bail!("format_version {v} is not supported (this build reads {FORMAT_VERSION})"),
    };
    let arch: Architecture = serde_json::from_str(meta.get("architecture").map_or("", |s| s))
        .map_err(|e| anyhow!("metadata 'architecture' is invalid: {e}"))?;
    // sizes first: nothing below allocates more than the limits allow
    lim::check("architecture.nb_rows", arch.nb_rows, 1, lim::MAX_NB_SIZE)?;
    lim::check("architecture.nb_cols", arch.nb_cols, 1, lim::MAX_NB_SIZE)?;
    lim::check(
        "architecture.num_layers",
        arch.num_layers,
        0,
        lim::MAX_LAYERS,
    )?;
    if arch.num_hiddens.len() != arch.num_layers || arch.extended.len() != arch.num_layers {
        bail!(
            "architecture: num_layers = {} but {} num_hiddens and {} extended flags",
            arch.num_layers,
            arch.num_hiddens.len(),
            arch.extended.len()
        );
    }
    for &h in &arch.num_hiddens {
        lim::check("architecture.num_hiddens", h, 1, lim::MAX_HIDDENS)?;
    }
    let mc = &arch.mcgsm;
    let (d, c, s, f) = (
        lim::check("architecture.mcgsm.dim_in", mc.dim_in, 1, lim::MAX_HIDDENS)?,
        lim::check(
            "architecture.mcgsm.num_components",
            mc.num_components,
            1,
            lim::MAX_COMPONENTS,
        )?,
        lim::check(
            "architecture.mcgsm.num_scales",
            mc.num_scales,
            1,
            lim::MAX_SCALES,
        )?,
        lim::check(
            "architecture.mcgsm.num_features",
            mc.num_features,
            1,
            lim::MAX_FEATURES,
        )?,
    );
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
    let (rows, cols) = (arch.nb_rows, arch.nb_cols);
    let mask = |name: &str| -> Result<Vec<bool>> {
        Ok(get(name, Dtype::U8, &[rows, cols])?
            .into_iter()
            .map(|b| b != 0)
            .collect())
    };
    let nb = Neighbourhood::from_masks(rows, cols, mask("mask.input")?, mask("mask.output")?)?;
    let n = nb.n_inputs();
    if arch.num_inputs != n {
        bail!(
            "architecture.num_inputs = {} but the input mask selects {n}",
            arch.num_inputs
        );
    }
    let whitening = Whitening {
        n,
        mean_in: f64s("whitening.mean_in", &[n])?,
        mean_out: f64s("whitening.mean_out", &[1])?[0],
        white_in: f64s("whitening.white_in", &[n, n])?,
        white_in_inv: f64s("whitening.white_in_inv", &[n, n])?,
        predictor: f64s("whitening.predictor", &[n])?,
        white_out: f64s("whitening.white_out", &[1])?[0],
    };
    let mut layers = vec![];
    let mut n_in = n;
    for (l, (&h, &ext)) in arch.num_hiddens.iter().zip(&arch.extended).enumerate() {
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
        linear_features: if mc.linear_features {
            Some(f32s("mcgsm.linear_features", &[c, d])?)
        } else {
            None
        },
        means: if mc.means {
            Some(f32s("mcgsm.means", &[c])?)
        } else {
            None
        },
    };
    Ok(Ride {
        nb,
        whitening,
        layers,
        mcgsm,
        preprocessing,
    })
}
