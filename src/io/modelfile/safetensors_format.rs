//! Our model format: the parameters as safetensors (f32) with the architecture, the
//! preprocessing and the format version in the metadata; checkpoints add named extra tensors.

use super::{load_as, FORMAT, FORMAT_VERSION};
use crate::io::files::write_atomic;
use crate::io::preprocessing::{Domain, Preprocessing};
use crate::limits as lim;
use crate::model::mcgsm::{Mcgsm, McgsmParts};
use crate::model::neighbourhood::Neighbourhood;
use crate::model::ride::Ride;
use crate::model::slstm::SlstmLayer;
use crate::model::whitening::Whitening;
use anyhow::{anyhow, bail, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

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
        "num_hiddens": m.layers.iter().map(|l| l.h()).collect::<Vec<_>>(),
        "extended": m.layers.iter().map(|l| l.extended()).collect::<Vec<_>>(),
        "mcgsm": {
            "dim_in": m.mcgsm.d(), "num_components": m.mcgsm.c(), "num_scales": m.mcgsm.s(),
            "num_features": m.mcgsm.f(),
            "linear_features": m.mcgsm.linear_features().is_some(), "means": m.mcgsm.means().is_some(),
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
    for (name, shape, data) in m.whitening.tensors() {
        t.push((
            format!("whitening.{name}"),
            Dtype::F64,
            shape,
            bytes_f64(&data),
        ));
    }
    for (l, layer) in m.layers.iter().enumerate() {
        t.push((
            format!("slstm.{l}.w"),
            Dtype::F32,
            vec![5 * layer.h(), layer.width()],
            bytes_f32(layer.w()),
        ));
        t.push((
            format!("slstm.{l}.b"),
            Dtype::F32,
            vec![5 * layer.h()],
            bytes_f32(layer.b()),
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
    canonical_header(safetensors::serialize(views, Some(meta))?)
}

/// safetensors writes its metadata map in hash order, so two writes of the same model would
/// differ in bytes. This rewrites the JSON header with every object's keys sorted: the same
/// keys and values, so the same length, and a model file becomes a function of the model.
fn canonical_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: std::collections::BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(b.into_iter().collect())
            }
            other => other,
        }
    }
    let len: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("serialised model shorter than its header length"))?;
    let n = u64::from_le_bytes(len) as usize;
    let header = bytes
        .get(8..8 + n)
        .ok_or_else(|| anyhow!("serialised model shorter than its header"))?;
    let text = serde_json::to_vec(&sorted(serde_json::from_slice(header)?))?;
    if text.len() > n {
        bail!(
            "the sorted header is longer than the original ({} > {n} bytes)",
            text.len()
        );
    }
    bytes[8..8 + text.len()].copy_from_slice(&text);
    bytes[8 + text.len()..8 + n].fill(b' ');
    Ok(bytes)
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

pub(super) fn from_safetensors_as(
    bytes: &[u8],
    legacy_domain: Option<Domain>,
) -> Result<Ride<f32>> {
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
    let whitening = Whitening::read(n, |name, shape| f64s(&format!("whitening.{name}"), shape))?;
    let mut layers = vec![];
    let mut n_in = n;
    for (l, (&h, &ext)) in arch.num_hiddens.iter().zip(&arch.extended).enumerate() {
        let width = n_in + if ext { 4 * h } else { 2 * h };
        let w = f32s(&format!("slstm.{l}.w"), &[5 * h, width])?;
        let b = f32s(&format!("slstm.{l}.b"), &[5 * h])?;
        layers.push(SlstmLayer::from_parts(n_in, h, ext, w, b)?);
        n_in = h;
    }
    if d != n_in {
        bail!("mcgsm.dim_in {d} does not match the top layer's width {n_in}");
    }
    let parts = McgsmParts::read((d, c, s, f), mc.linear_features, mc.means, |name, shape| {
        f32s(&format!("mcgsm.{name}"), shape)
    })?;
    let mcgsm = Mcgsm::from_parts((d, c, s, f), parts)?;
    Ok(Ride {
        nb,
        whitening,
        layers,
        mcgsm,
        preprocessing,
    })
}
