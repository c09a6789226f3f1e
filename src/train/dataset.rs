//! The images of an experiment config (train/test split per data set) and the whitening
//! fitted on them.

use crate::data::{self, rng_for, Purpose, Split};
use crate::io::images::GrayImage;
use crate::model::neighbourhood::Neighbourhood;
use crate::model::whitening::Whitening;
use crate::train::config::{DataConfig, Experiment};
use anyhow::{bail, Result};
use rand::RngExt;
use std::path::Path;

/// Train/test images of an experiment.
pub struct Dataset {
    pub train: Vec<GrayImage>,
    pub test: Vec<GrayImage>,
    /// patch data sets: the DC component of every training and test patch
    pub dc: Option<(Vec<f64>, Vec<f64>)>,
}

/// For patch data sets: the canvas every training patch and test image has (model grid = the
/// patch), which replaces the stages' square patch size.
pub fn patch_canvas(cfg: &Experiment) -> Result<Option<(usize, usize)>> {
    match &cfg.data {
        DataConfig::Bsds300Patches { size, .. } => {
            let nb = Neighbourhood::causal(cfg.model.nb_size)?;
            Ok(Some(data::bsds300_patches::canvas(&nb, *size)))
        }
        _ => Ok(None),
    }
}

/// Files and folders of `data_dir` the experiment reads that are not there (empty when all are,
/// and for the dead-leaves generator, which needs none).
pub fn missing_data(cfg: &Experiment, data_dir: &Path) -> Vec<std::path::PathBuf> {
    let bsds = |gray: bool| {
        let mut v = vec![
            data::bsds300::id_list_path(data_dir, Split::Train),
            data::bsds300::id_list_path(data_dir, Split::Test),
            data_dir.join("bsds300/images/train"),
            data_dir.join("bsds300/images/test"),
        ];
        if gray {
            v.push(data_dir.join("bsds300/gray/test"));
        }
        v
    };
    let need: Vec<std::path::PathBuf> = match &cfg.data {
        DataConfig::Bsds300 { test_gray_png, .. } => bsds(*test_gray_png),
        DataConfig::Bsds300Patches { .. } => bsds(false),
        DataConfig::Vanhateren {
            train_ids,
            test_ids,
        } => train_ids
            .iter()
            .chain(test_ids)
            .map(|id| data_dir.join("vanhateren").join(format!("{id}.iml")))
            .collect(),
        DataConfig::Deadleaves { .. } => vec![],
        DataConfig::Brodatz { plate, .. } => {
            vec![data_dir.join("brodatz").join(format!("{plate}.gif"))]
        }
    };
    need.into_iter().filter(|p| !p.exists()).collect()
}

pub fn load_data(cfg: &Experiment, data_dir: &Path) -> Result<Dataset> {
    let seed = cfg.seed;
    let ds = match &cfg.data {
        DataConfig::Bsds300 {
            dequantize,
            train_limit,
            test_limit,
            test_gray_png,
        } => {
            let train = data::bsds300::load(
                data_dir,
                data::bsds300::Split::Train,
                *dequantize,
                seed,
                *train_limit,
            )?;
            let test = if *test_gray_png {
                let dir = data_dir.join("bsds300/gray/test");
                let mut files = crate::io::images::expand_inputs(&[dir])?;
                if let Some(n) = test_limit {
                    files.truncate(*n);
                }
                files
                    .iter()
                    .map(|f| {
                        let mut g =
                            crate::io::images::load_gray(f, crate::io::images::GrayMode::Pil)?;
                        g.data.iter_mut().for_each(|v| *v /= 255.0);
                        Ok(g)
                    })
                    .collect::<Result<Vec<_>>>()?
            } else {
                data::bsds300::load(
                    data_dir,
                    data::bsds300::Split::Test,
                    false,
                    seed,
                    *test_limit,
                )?
            };
            Dataset {
                train,
                test,
                dc: None,
            }
        }
        DataConfig::Bsds300Patches {
            size,
            train_patches,
            test_patches,
            train_limit,
            test_limit,
        } => {
            let nb = Neighbourhood::causal(cfg.model.nb_size)?;
            let split = |split, limit: &Option<usize>, count: usize| -> Result<_> {
                let imgs = data::bsds300::load(data_dir, split, true, seed, *limit)?;
                let v =
                    data::bsds300_patches::sample_patches(&imgs, &nb, *size, count, seed, split)?;
                Ok(v.into_iter().unzip::<_, _, Vec<_>, Vec<_>>())
            };
            let (train, dc_train) =
                split(data::bsds300::Split::Train, train_limit, *train_patches)?;
            let (test, dc_test) = split(data::bsds300::Split::Test, test_limit, *test_patches)?;
            Dataset {
                train,
                test,
                dc: Some((dc_train, dc_test)),
            }
        }
        DataConfig::Vanhateren {
            train_ids,
            test_ids,
        } => Dataset {
            train: data::vanhateren::load(data_dir, train_ids, seed, Split::Train)?,
            test: data::vanhateren::load(data_dir, test_ids, seed, Split::Test)?,
            dc: None,
        },
        DataConfig::Deadleaves {
            size,
            train_images,
            test_images,
            min_radius,
            max_radius,
        } => {
            let g = data::DeadLeaves::new(*size, *min_radius, *max_radius)?;
            let mut train = g.generate_set(*train_images, seed, Split::Train);
            let mut test = g.generate_set(*test_images, seed, Split::Test);
            // Exact disks have flat interiors whose continuous density is unbounded; like
            // natural images we quantise to 8 bits and add uniform dequantisation noise,
            // (q + u)/255, so densities are bounded (at most ln 255 nats per pixel).
            for (imgs, split) in [(&mut train, Split::Train), (&mut test, Split::Test)] {
                for (k, img) in imgs.iter_mut().enumerate() {
                    let mut r = rng_for(seed, Purpose::Dequantize, split.stream(), k as u64);
                    for v in img.data.iter_mut() {
                        *v = ((*v * 256.0).floor().clamp(0.0, 255.0) + r.random_range(0.0..1.0))
                            / 255.0;
                    }
                }
            }
            Dataset {
                train,
                test,
                dc: None,
            }
        }
        DataConfig::Brodatz { plate, train_rows } => {
            let img = data::brodatz::load_plate(data_dir, plate)?;
            // the held-out rows must hold at least one evaluation tile
            let max = img.h.saturating_sub(cfg.evaluation.tile);
            if *train_rows == 0 || *train_rows > max {
                bail!(
                    "data.train_rows = {train_rows}: must be between 1 and {max} for plate {plate} ({} rows), so that the held-out rows hold a {}-row evaluation tile",
                    img.h,
                    cfg.evaluation.tile
                );
            }
            let split = |r0: usize, r1: usize, tag: &str| GrayImage {
                name: format!("{plate}_{tag}"),
                h: r1 - r0,
                w: img.w,
                data: img.data[r0 * img.w..r1 * img.w].to_vec(),
            };
            Dataset {
                train: vec![split(0, *train_rows, "train")],
                test: vec![split(*train_rows, img.h, "test")],
                dc: None,
            }
        }
    };
    if ds.train.is_empty() {
        bail!("no training images for experiment '{}'", cfg.name);
    }
    Ok(ds)
}

/// Fits the whitening on up to `samples` random neighbourhood/pixel pairs of the images.
pub fn fit_whitening(
    nb: &Neighbourhood,
    images: &[GrayImage],
    samples: usize,
    seed: u64,
) -> Result<Whitening> {
    let mut rng = rng_for(seed, Purpose::Whitening, 0, 0);
    let offs = nb.input_offsets();
    let (orow, ocol) = nb.output_pos();
    let usable: Vec<&GrayImage> = images
        .iter()
        .filter(|g| nb.grid(g.h, g.w).is_some())
        .collect();
    if usable.is_empty() {
        bail!(
            "no image is larger than the {}×{} neighbourhood",
            nb.rows,
            nb.cols
        );
    }
    let total: usize = usable
        .iter()
        .map(|g| nb.grid(g.h, g.w).map_or(0, |(a, b)| a * b))
        .sum();
    let n = samples.min(total).max(2);
    let (mut xs, mut ys) = (Vec::with_capacity(n * offs.len()), Vec::with_capacity(n));
    for _ in 0..n {
        let g = usable[rng.random_range(0..usable.len())];
        let (gr, gc) = nb.grid(g.h, g.w).unwrap_or((1, 1));
        let (r, c) = (rng.random_range(0..gr), rng.random_range(0..gc));
        xs.extend(offs.iter().map(|&(dr, dc)| g.data[(r + dr) * g.w + c + dc]));
        ys.push(g.data[(r + orow) * g.w + c + ocol]);
    }
    Whitening::fit(&xs, &ys, nb.n_inputs())
}
