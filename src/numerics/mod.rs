//! The arithmetic under the model: the floating-point types ([`real`]), GEMMs and the
//! eigendecomposition ([`linalg`], [`packed_gemm`]), the per-cell matrix–vector product ([`gemv`]) and the SIMD exp ([`simd_math`]).

pub mod gemv;
pub mod linalg;
pub mod packed_gemm;
pub mod real;
pub mod simd_math;
