//! `C += A·B` for the per-diagonal products of the SLSTM recurrence, with B packed once per
//! step (faer packs its operands on every call, 36 calls per sweep).
//!
//! Shapes: A `[M, K]` row-major with row stride `lda` (the recurrent inputs of one diagonal),
//! B `[K, N]` (the recurrent weights, transposed), C `[M, N]` row-major with row stride `ldc`.
//! B is packed into panels of NR = 2 SIMD vectors of columns, `[N/NR][K][NR]`; A is read in
//! place. The microkernel keeps a 6 × NR tile of C in 12 registers (AVX2: 6 × 16) and streams
//! the panel: per k, 2 loads of B, 6 broadcasts of A, 12 FMAs. Blocks of 48 rows keep their C
//! rows in L2 and A rows in L1 while each panel (K·NR floats, 8 KiB at K = 128) sits in L1.
//!
//! Reference: [`reference_gemm_acc`], the plain triple loop, for the tests.

use faer::MatRef;
use pulp::{Simd, WithSimd};

/// Rows of the register tile.
const MR: usize = 6;

/// B `[K, N]` in panels of `nr` columns: `data[(p·K + k)·nr + j] = B[k, p·nr + j]`.
#[derive(Clone, Debug, Default)]
pub struct PackedRhs {
    k: usize,
    n: usize,
    nr: usize,
    data: Vec<f32>,
}

/// f32 lanes of the SIMD instruction set pulp dispatches to on this machine.
pub fn f32_lanes() -> usize {
    struct L;
    impl WithSimd for L {
        type Output = usize;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> usize {
            S::F32_LANES
        }
    }
    pulp::Arch::new().dispatch(L)
}

impl PackedRhs {
    /// Packs B; `None` when N is not a multiple of the panel width (callers use faer then).
    pub fn pack(b: MatRef<'_, f32>) -> Option<Self> {
        let (k, n, nr) = (b.nrows(), b.ncols(), 2 * f32_lanes());
        if n % nr != 0 || k == 0 {
            return None;
        }
        let mut data = Vec::with_capacity(k * n);
        for p in 0..n / nr {
            for kk in 0..k {
                data.extend((0..nr).map(|j| b[(kk, p * nr + j)]));
            }
        }
        Some(Self { k, n, nr, data })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }
}

/// C `[M, N]` (row stride `ldc`) += A `[M, K]` (row stride `lda`) · B.
pub fn gemm_acc(c: &mut [f32], ldc: usize, a: &[f32], lda: usize, m: usize, b: &PackedRhs) {
    if m == 0 {
        return;
    }
    assert!(
        ldc >= b.n && lda >= b.k,
        "packed GEMM: row strides too small"
    );
    assert!(
        c.len() >= (m - 1) * ldc + b.n && a.len() >= (m - 1) * lda + b.k,
        "packed GEMM: operands too short"
    );
    pulp::Arch::new().dispatch(Kernel {
        c,
        ldc,
        a,
        lda,
        m,
        b,
    });
}

/// Rows of A and C per outer block: its C rows (MC·N floats) stay in L2 and its A rows in L1
/// while every panel of B passes over them.
const MC: usize = 48;

struct Kernel<'a> {
    c: &'a mut [f32],
    ldc: usize,
    a: &'a [f32],
    lda: usize,
    m: usize,
    b: &'a PackedRhs,
}

impl WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Kernel {
            c,
            ldc,
            a,
            lda,
            m,
            b,
        } = self;
        let (k, nr) = (b.k, b.nr);
        assert_eq!(nr, 2 * S::F32_LANES, "packed for another instruction set");
        let (bv, _) = S::as_simd_f32s(&b.data);
        for m0 in (0..m).step_by(MC) {
            let m1 = (m0 + MC).min(m);
            for p in 0..b.n / nr {
                let panel = &bv[p * 2 * k..(p + 1) * 2 * k];
                for i in (m0..m1).step_by(MR) {
                    let rows = MR.min(m1 - i);
                    let a_at = |r: usize| &a[(i + r.min(rows - 1)) * lda..][..k];
                    let a_rows = [a_at(0), a_at(1), a_at(2), a_at(3), a_at(4), a_at(5)];
                    let acc = micro(s, a_rows, panel);
                    for (r, acc_r) in acc.iter().enumerate().take(rows) {
                        let row = &mut c[(i + r) * ldc + p * nr..][..nr];
                        let (cv, _) = S::as_mut_simd_f32s(row);
                        cv[0] = s.add_f32s(cv[0], acc_r[0]);
                        cv[1] = s.add_f32s(cv[1], acc_r[1]);
                    }
                }
            }
        }
    }
}

/// The 6 × NR register tile: Σ_k a_r[k] · panel[k] (rows past the end of A repeat the last
/// row; their results are not stored).
#[inline(always)]
fn micro<S: Simd>(s: S, a: [&[f32]; MR], panel: &[S::f32s]) -> [[S::f32s; 2]; MR] {
    let mut acc = [[s.splat_f32s(0.0); 2]; MR];
    let k = panel.len() / 2;
    let a = a.map(|r| &r[..k]);
    for (kk, bk) in panel.chunks_exact(2).enumerate() {
        for r in 0..MR {
            let av = s.splat_f32s(a[r][kk]);
            acc[r][0] = s.mul_add_f32s(av, bk[0], acc[r][0]);
            acc[r][1] = s.mul_add_f32s(av, bk[1], acc[r][1]);
        }
    }
    acc
}

/// Plain triple-loop reference of [`gemm_acc`] (B given unpacked, `[K, N]` row-major).
#[allow(clippy::too_many_arguments)]
pub fn reference_gemm_acc(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|kk| a[i * lda + kk] * b[kk * n + j]).sum();
            c[i * ldc + j] += dot;
        }
    }
}
