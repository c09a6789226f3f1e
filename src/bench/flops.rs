//! FLOP model used by every benchmark to turn cells/s into GFLOP/s.
//!
//! We count the floating-point operations of the matrix products (2 per multiply-add), which
//! dominate, plus a small documented allowance for the element-wise work. Per grid cell:
//!
//! SLSTM layer (n_in inputs, H hidden, K = 2H, or 4H for the extended variant):
//! - forward:  input projection 2·5H·n_in + recurrent product 2·5H·K
//!   + gates ≈ 30·5H (nonlinearities by rational approximation, cell/hidden update)
//! - backward: dR = dZ·W_r 2·5H·K, dW_x += dZᵀU 2·5H·n_in, dW_r += dZᵀR 2·5H·K,
//!   dU = dZ·W_x 2·5H·n_in (only when requested: not for the first layer)
//!   + gates ≈ 20·5H
//!
//! MCGSM (D inputs, C components, S scales, F features):
//! - forward:  features 2·D·F, squared features · β² 2·F·C, predictions 2·D·C,
//!   (linear features 2·D·C), mixture ≈ 12·C·S
//! - backward: dβ 2·C·F, dq 2·C·F, db 2·D·F, dU via b 2·D·F, dA 2·C·D, dU via A 2·C·D,
//!   (linear features 4·C·D), mixture ≈ 12·C·S

use crate::model::mcgsm::Mcgsm;
use crate::model::slstm::SlstmLayer;

/// SLSTM layer forward FLOPs per cell.
pub fn slstm_forward(n_in: usize, h: usize, extended: bool) -> f64 {
    let k = if extended { 4 * h } else { 2 * h } as f64;
    let h5 = 5.0 * h as f64;
    2.0 * h5 * (n_in as f64 + k) + 30.0 * h5
}

/// SLSTM layer backward FLOPs per cell (`input_grad`: whether dL/du is computed).
pub fn slstm_backward(n_in: usize, h: usize, extended: bool, input_grad: bool) -> f64 {
    let k = if extended { 4 * h } else { 2 * h } as f64;
    let (h5, n) = (5.0 * h as f64, n_in as f64);
    2.0 * h5 * (2.0 * k + n + if input_grad { n } else { 0.0 }) + 20.0 * h5
}

pub fn layer_forward<T>(l: &SlstmLayer<T>) -> f64 {
    slstm_forward(l.n_in(), l.h(), l.extended())
}

pub fn layer_backward<T>(l: &SlstmLayer<T>, input_grad: bool) -> f64 {
    slstm_backward(l.n_in(), l.h(), l.extended(), input_grad)
}

/// MCGSM forward FLOPs per cell.
pub fn mcgsm_forward<T>(m: &Mcgsm<T>) -> f64 {
    let (d, c, s, f) = (m.d() as f64, m.c() as f64, m.s() as f64, m.f() as f64);
    let lin = if m.linear_features().is_some() {
        2.0 * d * c
    } else {
        0.0
    };
    2.0 * d * f + 2.0 * f * c + 2.0 * d * c + lin + 12.0 * c * s
}

/// MCGSM backward FLOPs per cell (gradient w.r.t. parameters and input).
pub fn mcgsm_backward<T>(m: &Mcgsm<T>) -> f64 {
    let (d, c, s, f) = (m.d() as f64, m.c() as f64, m.s() as f64, m.f() as f64);
    let lin = if m.linear_features().is_some() {
        4.0 * d * c
    } else {
        0.0
    };
    4.0 * c * f + 4.0 * d * f + 4.0 * d * c + lin + 12.0 * c * s
}
