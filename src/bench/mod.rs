//! Measuring speed: the FLOP model ([`flops`]), the benchmark kernels ([`perf`]), `ride bench`'s
//! roofline against the measured FMA peak ([`roofline`]) and criterion's results
//! ([`criterion_harvest`]).

pub mod criterion_harvest;
pub mod flops;
pub mod perf;
pub mod roofline;
