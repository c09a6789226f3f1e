//! Small random models for tests (hidden from the docs, not an API): the whitening fitted on
//! smooth noise, every parameter jittered away from its initial value so that no symmetry of
//! the initialisation hides a bug.

use super::{MixtureSize, Ride};
use crate::model::neighbourhood::Neighbourhood;
use crate::model::whitening::Whitening;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A random model on the causal neighbourhood `nb_size`, whitening fitted on 5 smooth-noise
/// images of (nb_size + 4) × (nb_size + 5), parameters jittered by U(−jitter, jitter).
pub fn tiny_model(
    seed: u64,
    nb_size: usize,
    hiddens: &[usize],
    extended: bool,
    mix: MixtureSize,
    jitter: f64,
) -> Ride<f64> {
    let nb = Neighbourhood::causal(nb_size).expect("a valid test neighbourhood");
    let (h, w) = (nb_size + 4, nb_size + 5);
    let (mut xs, mut ys) = (vec![], vec![]);
    for img in crate::data::smooth_noise_images(5, h, w, seed) {
        let (x, y, _, _) = nb.extract(&img, h, w).expect("test image fits");
        xs.extend(x);
        ys.extend(y);
    }
    let wh = Whitening::fit(&xs, &ys, nb.n_inputs()).expect("test whitening");
    let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut m = Ride::<f64>::init(nb, wh, hiddens, extended, mix, &mut r);
    for t in m.params_mut() {
        t.iter_mut()
            .for_each(|v| *v += r.random_range(-jitter..jitter));
    }
    m
}

/// A mixture of `components` × `scales` with `features` features, no linear features or means.
pub fn plain_mixture(components: usize, scales: usize, features: usize) -> MixtureSize {
    MixtureSize {
        components,
        scales,
        features,
        linear_features: false,
        means: false,
    }
}
