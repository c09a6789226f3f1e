//! RIDE — recurrent image density estimator (Theis & Bethge, NIPS 2015): spatial LSTMs and a
//! mixture of conditional Gaussian scale mixtures, exact and fast.
//!
//! One paper concept per module; each fast kernel sits beside its plain reference.

pub mod config;
pub mod criterion_harvest;
pub mod data;
pub mod eval;
pub mod fetch;
pub mod finetune;
pub mod flops;
pub mod gates;
pub mod images;
pub mod inpaint;
pub mod limits;
pub mod linalg;
pub mod mcgsm;
pub mod model;
pub mod modelfile;
pub mod neighbourhood;
pub mod optim;
pub mod packed_gemm;
pub mod perf;
pub mod plot;
pub mod preprocessing;
pub mod progress;
pub mod real;
pub mod reproduce;
pub mod roofline;
pub mod sample;
pub mod simd_math;
pub mod slstm;
pub mod sweep;
pub mod train;
pub mod wavefront;
pub mod whitening;
