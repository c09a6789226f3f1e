//! How well a chain mixes: the integrated autocorrelation time of a trace (e.g. the hole
//! log-likelihood after every sweep), so "1000 sweeps" can be read as a number of roughly
//! independent states.

/// Integrated autocorrelation time τ = 1 + 2 Σ_{t=1..M} ρ(t) of the series `x`, with Sokal's
/// automatic window: the smallest M with M ≥ 5 τ(M). In units of the series' steps; 1 for
/// independent draws. `None` for fewer than 4 values or a constant series.
pub fn autocorrelation_time(x: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 4 {
        return None;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let d: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let c0 = d.iter().map(|v| v * v).sum::<f64>() / n as f64;
    if c0 <= 0.0 {
        return None;
    }
    let mut tau = 1.0;
    for m in 1..n {
        let c = d[..n - m]
            .iter()
            .zip(&d[m..])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / n as f64;
        tau += 2.0 * c / c0;
        if m as f64 >= 5.0 * tau {
            break;
        }
    }
    Some(tau.max(1.0))
}

/// The mean of a chain's trace `x` and its Monte Carlo standard error √(variance · τ / n),
/// τ from [`autocorrelation_time`]: correlated states count as n / τ independent ones.
/// `None` where τ is undefined (fewer than 4 values, a constant series).
pub fn mean_and_error(x: &[f64]) -> Option<(f64, f64)> {
    let tau = autocorrelation_time(x)?;
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, (var * tau / n).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// An AR(1) series x_t = φ x_{t−1} + ε_t has τ = (1 + φ) / (1 − φ).
    #[test]
    fn ar1_series_has_its_known_time() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for phi in [0.0, 0.5, 0.9] {
            let mut x = vec![0.0f64; 200_000];
            for t in 1..x.len() {
                // uniform noise of variance 1
                let e: f64 = (rng.random::<f64>() - 0.5) * 12f64.sqrt();
                x[t] = phi * x[t - 1] + e;
            }
            let want = (1.0 + phi) / (1.0 - phi);
            let got = autocorrelation_time(&x).unwrap();
            assert!(
                (got - want).abs() < 0.1 * want,
                "φ {phi}: τ {got}, want {want}"
            );
        }
        assert_eq!(autocorrelation_time(&[1.0; 10]), None);
        assert_eq!(autocorrelation_time(&[1.0, 2.0]), None);
    }

    /// The standard error of a correlated chain's mean matches the spread of the means of
    /// many independent chains (AR(1), φ 0.8: τ 9, so 2000 steps ≈ 222 independent ones).
    #[test]
    fn standard_error_matches_the_spread_of_chain_means() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let (phi, chains, n) = (0.8, 400, 2000);
        let mut means = vec![];
        let mut errors = vec![];
        for _ in 0..chains {
            let mut x = vec![0.0f64; n];
            for t in 1..n {
                x[t] = phi * x[t - 1] + (rng.random::<f64>() - 0.5) * 12f64.sqrt();
            }
            let (m, e) = mean_and_error(&x).unwrap();
            means.push(m);
            errors.push(e);
        }
        let grand = means.iter().sum::<f64>() / chains as f64;
        let spread =
            (means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (chains - 1) as f64).sqrt();
        let error = errors.iter().sum::<f64>() / chains as f64;
        assert!(
            (error / spread - 1.0).abs() < 0.15,
            "standard error {error}, spread of the means {spread}"
        );
        assert_eq!(mean_and_error(&[2.0; 8]), None);
    }
}
