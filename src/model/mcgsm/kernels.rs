//! The MCGSM's fast path: [`Mcgsm::forward`] and [`Mcgsm::backward`] over a block of rows, with
//! the buffers they share ([`McgsmWork`]). Shapes and formulas in each function's comment.

use super::{Mcgsm, HALF_LN_2PI};
use crate::numerics::linalg::{gemm, view, view_mut};
use crate::numerics::real::Real;

/// Buffers of one block of R rows, kept from [`Mcgsm::forward`] for [`Mcgsm::backward`] and
/// reused between calls (resized, never re-zeroed: every entry is written before it is read).
/// Z = F + C, plus C more with linear features: the columns of the one input GEMM.
#[derive(Default)]
pub struct McgsmWork<T> {
    /// W `[D, Z]`: features b, then predictorsᵀ, then linear featuresᵀ
    w: Vec<T>,
    /// z = U·W `[R, Z]`: b_nᵀu, predictions A_c u + m_c, w_cᵀu; backward: dz
    z: Vec<T>,
    /// dz `[R, Z]`: d fb, d pred, d lin
    dz: Vec<T>,
    /// q = (b_nᵀu)² `[R, F]`; backward overwrites it with da·β²
    q: Vec<T>,
    /// a_rc = −½ Σ_n β_cn² q_rn + w_cᵀu `[R, C]`; backward overwrites it with da
    a: Vec<T>,
    /// r2_rc = ½ (y_r − pred_rc)² `[R, C]`
    r2: Vec<T>,
    /// exp(e − max e) and exp(x − max x), scale-major within a row `[R, S, C]`
    pe: Vec<T>,
    px: Vec<T>,
    /// their row sums `[R]`
    se: Vec<T>,
    sx: Vec<T>,
    /// β² `[C, F]`
    beta2: Vec<T>,
    /// e^α, η and ½α − ½ log 2π, scale-major `[S, C]` (so the mixture loops run over C)
    ea_t: Vec<T>,
    prior_t: Vec<T>,
    cst_t: Vec<T>,
    /// backward sums over rows, scale-major `[S, C]`: Σ δE, Σ δX, Σ (δE a − δX r2)
    g_prior_t: Vec<T>,
    g_dx_t: Vec<T>,
    g_scale_t: Vec<T>,
    /// one row's Σ_s δE e^α and Σ_s δX e^α `[C]`
    sa: Vec<T>,
    sp: Vec<T>,
    /// dW = Uᵀ·dz `[D, Z]`, dβ² `[C, F]`
    dw: Vec<T>,
    db2: Vec<T>,
    /// rows of the last forward, and whether it kept the posteriors
    rows: usize,
    kept: bool,
}

/// Sets the length of a buffer whose entries are all written before they are read.
fn fit<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::zero());
    }
}

/// Sets the length and zeros (for sums).
fn zeroed<T: Real>(v: &mut Vec<T>, n: usize) {
    v.clear();
    v.resize(n, T::zero());
}

impl<T: Real> Mcgsm<T> {
    /// Forward: u `[R, D]`, y `[R]` → ll `[R]` (nats). With `keep`, `work` keeps what
    /// [`Self::backward`] needs.
    ///
    /// One GEMM z = U·[b | Aᵀ | wᵀ] `[R, Z]`, then q = fb² `[R, F]` and
    /// a = −½ q·(β²)ᵀ + w u `[R, C]` (the only other dense product), r2 = ½ (y − pred)²
    /// `[R, C]`. The energies e_cs = η_cs + e^{α_cs} a_c and
    /// x_cs = e_cs + ½α_cs − ½ log 2π − e^{α_cs} r2_c are broadcasts over the scales (no
    /// products with structural zeros), followed by the SIMD log-sum-exp of each row.
    pub fn forward(&self, u: &[T], y: &[T], ll: &mut [T], work: &mut McgsmWork<T>, keep: bool) {
        let (d, nc, ns, nf) = (self.d, self.c, self.s, self.f);
        let (ncs, nz, rows) = (nc * ns, self.z_cols(), y.len());
        let half = T::of(0.5);
        let w = work;
        w.rows = rows;
        w.kept = keep;
        // W [D, Z] and the scale-major per-(s, c) constants
        fit(&mut w.w, d * nz);
        for (k, wr) in w.w.chunks_exact_mut(nz).enumerate() {
            wr[..nf].copy_from_slice(&self.features[k * nf..][..nf]);
            for c in 0..nc {
                wr[nf + c] = self.predictors[c * d + k];
            }
            if let Some(wl) = &self.linear_features {
                for c in 0..nc {
                    wr[nf + nc + c] = wl[c * d + k];
                }
            }
        }
        fit(&mut w.beta2, nc * nf);
        w.beta2
            .iter_mut()
            .zip(&self.weights)
            .for_each(|(b2, b)| *b2 = *b * *b);
        for v in [&mut w.ea_t, &mut w.prior_t, &mut w.cst_t] {
            fit(v, ncs);
        }
        for c in 0..nc {
            for s in 0..ns {
                let (k, t) = (c * ns + s, s * nc + c);
                let alpha = self.scales[k];
                w.ea_t[t] = alpha.exp();
                w.prior_t[t] = self.priors[k];
                w.cst_t[t] = half * alpha - T::of(HALF_LN_2PI);
            }
        }
        // z = U·W; q = fb²; a = −½ q·(β²)ᵀ + w u; pred += m; r2 = ½ (y − pred)²
        fit(&mut w.z, rows * nz);
        fit(&mut w.q, rows * nf);
        fit(&mut w.a, rows * nc);
        fit(&mut w.r2, rows * nc);
        gemm(
            view_mut(&mut w.z, rows, nz, nz),
            false,
            view(u, rows, d, d),
            view(&w.w, d, nz, nz),
        );
        for (qr, zr) in w.q.chunks_exact_mut(nf).zip(w.z.chunks_exact(nz)) {
            qr.iter_mut().zip(&zr[..nf]).for_each(|(q, f)| *q = *f * *f);
        }
        gemm(
            view_mut(&mut w.a, rows, nc, nc),
            false,
            view(&w.q, rows, nf, nf),
            view(&w.beta2, nc, nf, nf).transpose(),
        );
        let linear = self.linear_features.is_some();
        for (r, (ar, zr)) in
            w.a.chunks_exact_mut(nc)
                .zip(w.z.chunks_exact_mut(nz))
                .enumerate()
        {
            ar.iter_mut().for_each(|v| *v = -half * *v);
            if linear {
                ar.iter_mut()
                    .zip(&zr[nf + nc..])
                    .for_each(|(a, l)| *a += *l);
            }
            let pred = &mut zr[nf..nf + nc];
            if let Some(m) = &self.means {
                pred.iter_mut().zip(m).for_each(|(p, m)| *p += *m);
            }
            w.r2[r * nc..][..nc]
                .iter_mut()
                .zip(pred.iter())
                .for_each(|(r2, p)| *r2 = half * (y[r] - *p) * (y[r] - *p));
        }
        // the mixture, row by row: energies, then log-sum-exps
        let kept_rows = if keep { rows } else { 1 };
        fit(&mut w.pe, kept_rows * ncs);
        fit(&mut w.px, kept_rows * ncs);
        fit(&mut w.se, kept_rows);
        fit(&mut w.sx, kept_rows);
        for (r, ll_r) in ll.iter_mut().enumerate().take(rows) {
            let k = if keep { r } else { 0 };
            let er = &mut w.pe[k * ncs..][..ncs];
            let xr = &mut w.px[k * ncs..][..ncs];
            let (ar, r2r) = (&w.a[r * nc..][..nc], &w.r2[r * nc..][..nc]);
            for s in 0..ns {
                let o = s * nc;
                let (es, xs) = (&mut er[o..o + nc], &mut xr[o..o + nc]);
                let (pt, et, ct) = (
                    &w.prior_t[o..o + nc],
                    &w.ea_t[o..o + nc],
                    &w.cst_t[o..o + nc],
                );
                for c in 0..nc {
                    let e = pt[c] + et[c] * ar[c];
                    es[c] = e;
                    xs[c] = e + ct[c] - et[c] * r2r[c];
                }
            }
            let (emax, xmax) = (T::max_of(er), T::max_of(xr));
            let (se, sx) = (T::exp_shift_sum(er, emax), T::exp_shift_sum(xr, xmax));
            *ll_r = (xmax + sx.ln()) - (emax + se.ln());
            w.se[k] = se;
            w.sx[k] = sx;
        }
    }

    /// Backward of [`Self::forward`] (called with `keep`) on the same u `[R, D]`, y `[R]`:
    /// adds Σ_r gl_r ∂ll_r/∂θ into `g`, and writes Σ_r gl_r ∂ll_r/∂u `[R, D]` into `du` if
    /// given.
    ///
    /// Posteriors δX = gl·softmax(x), δE = δX − gl·softmax(e); segmented over the scales:
    /// dη_cs = Σ_r δE, dα_cs = Σ_r ½ δX + e^{α_cs} (δE a_c − δX r2_c),
    /// da_c = Σ_s δE_cs e^{α_cs}, dpred_c = Σ_s δX_cs e^{α_cs} (y − pred_c). Then
    /// dβ = −β ⊙ (daᵀ q), dfb = −fb ⊙ (da·β²), and two GEMMs: dW = Uᵀ·dz, du = dz·Wᵀ.
    pub fn backward(
        &self,
        u: &[T],
        y: &[T],
        gl: &[T],
        work: &mut McgsmWork<T>,
        g: &mut Mcgsm<T>,
        du: Option<&mut [T]>,
    ) {
        let (d, nc, ns, nf) = (self.d, self.c, self.s, self.f);
        let (ncs, nz, rows) = (nc * ns, self.z_cols(), y.len());
        let half = T::of(0.5);
        let w = work;
        assert!(
            w.kept && w.rows == rows,
            "Mcgsm::backward needs the forward of the same rows with keep"
        );
        for v in [&mut w.g_prior_t, &mut w.g_dx_t, &mut w.g_scale_t] {
            zeroed(v, ncs);
        }
        fit(&mut w.sa, nc);
        fit(&mut w.sp, nc);
        fit(&mut w.dz, rows * nz);
        for r in 0..rows {
            let (ie, ix) = (gl[r] / w.se[r], gl[r] / w.sx[r]);
            let (er, xr) = (&w.pe[r * ncs..][..ncs], &w.px[r * ncs..][..ncs]);
            let (ar, r2r) = (&mut w.a[r * nc..][..nc], &w.r2[r * nc..][..nc]);
            let (sa, sp) = (&mut w.sa[..nc], &mut w.sp[..nc]);
            sa.fill(T::zero());
            sp.fill(T::zero());
            for s in 0..ns {
                let o = s * nc;
                let (es, xs, et) = (&er[o..o + nc], &xr[o..o + nc], &w.ea_t[o..o + nc]);
                let gp = &mut w.g_prior_t[o..o + nc];
                let gx = &mut w.g_dx_t[o..o + nc];
                let gs = &mut w.g_scale_t[o..o + nc];
                for c in 0..nc {
                    let dx = xs[c] * ix;
                    let de = dx - es[c] * ie;
                    gp[c] += de;
                    gx[c] += dx;
                    gs[c] += de * ar[c] - dx * r2r[c];
                    sa[c] += de * et[c];
                    sp[c] += dx * et[c];
                }
            }
            let (zr, dzr) = (&w.z[r * nz..][..nz], &mut w.dz[r * nz..][..nz]);
            for c in 0..nc {
                dzr[nf + c] = sp[c] * (y[r] - zr[nf + c]);
            }
            if self.linear_features.is_some() {
                dzr[nf + nc..].copy_from_slice(sa);
            }
            ar.copy_from_slice(sa);
        }
        for c in 0..nc {
            for s in 0..ns {
                let (k, t) = (c * ns + s, s * nc + c);
                g.priors[k] += w.g_prior_t[t];
                g.scales[k] += half * w.g_dx_t[t] + w.ea_t[t] * w.g_scale_t[t];
            }
        }
        // a = −½ q·(β²)ᵀ: dβ = −β ⊙ (daᵀ q); dq = −½ da·β², so dfb = 2 fb ⊙ dq = −fb ⊙ (da·β²)
        let da = view(&w.a, rows, nc, nc);
        fit(&mut w.db2, nc * nf);
        gemm(
            view_mut(&mut w.db2, nc, nf, nf),
            false,
            da.transpose(),
            view(&w.q, rows, nf, nf),
        );
        g.weights
            .iter_mut()
            .zip(w.db2.iter().zip(&self.weights))
            .for_each(|(gw, (d2, b))| *gw -= *b * *d2);
        gemm(
            view_mut(&mut w.q, rows, nf, nf),
            false,
            da,
            view(&w.beta2, nc, nf, nf),
        );
        for ((dzr, zr), dq) in
            w.dz.chunks_exact_mut(nz)
                .zip(w.z.chunks_exact(nz))
                .zip(w.q.chunks_exact(nf))
        {
            dzr[..nf]
                .iter_mut()
                .zip(&zr[..nf])
                .zip(dq)
                .for_each(|((o, f), q)| *o = -*f * *q);
        }
        // dW = Uᵀ·dz `[D, Z]`, scattered into db `[D, F]`, dA `[C, D]`, dw `[C, D]`
        fit(&mut w.dw, d * nz);
        gemm(
            view_mut(&mut w.dw, d, nz, nz),
            false,
            view(u, rows, d, d).transpose(),
            view(&w.dz, rows, nz, nz),
        );
        for (k, dwr) in w.dw.chunks_exact(nz).enumerate() {
            g.features[k * nf..][..nf]
                .iter_mut()
                .zip(&dwr[..nf])
                .for_each(|(a, b)| *a += *b);
            for c in 0..nc {
                g.predictors[c * d + k] += dwr[nf + c];
            }
            if let Some(gw) = &mut g.linear_features {
                for c in 0..nc {
                    gw[c * d + k] += dwr[nf + nc + c];
                }
            }
        }
        if let Some(gm) = &mut g.means {
            for dzr in w.dz.chunks_exact(nz) {
                gm.iter_mut()
                    .zip(&dzr[nf..nf + nc])
                    .for_each(|(a, b)| *a += *b);
            }
        }
        if let Some(du) = du {
            gemm(
                view_mut(du, rows, d, d),
                false,
                view(&w.dz, rows, nz, nz),
                view(&w.w, d, nz, nz).transpose(),
            );
        }
    }
}
