//! The model, in the order the data flows through it: an image's causal [`neighbourhood`]s,
//! their conditional [`whitening`], the stack of spatial LSTM layers ([`slstm`], swept in
//! [`wavefront`] order, with the fused [`gates`]), and the [`mcgsm`] that turns the top layer's
//! hidden state into the log-likelihood of each pixel. [`ride`] puts them together.

pub mod gates;
pub mod mcgsm;
pub mod neighbourhood;
pub mod raster;
pub mod ride;
pub mod slstm;
pub mod wavefront;
pub mod whitening;
