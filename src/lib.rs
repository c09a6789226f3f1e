//! RIDE — recurrent image density estimator (Theis & Bethge, NIPS 2015): spatial LSTMs and a
//! mixture of conditional Gaussian scale mixtures, exact and fast.
//!
//! One paper concept per module, grouped by concept: `model` (the paper's equations),
//! `numerics`, `train`, `tasks`, `data`, `io`, `harness`, `bench`; each fast kernel sits beside
//! its plain reference. `docs/ARCHITECTURE.md` maps the paper's equations to functions.

pub mod bench;
pub mod codec;
pub mod data;
pub mod harness;
pub mod io;
pub mod limits;
pub mod model;
pub mod numerics;
pub mod tasks;
pub mod train;
