//! Files in and out: images and their conversion to model units ([`images`],
//! [`preprocessing`]), model files ([`modelfile`]), figures ([`plot`]) and progress on the
//! terminal or in logs ([`progress`]).

pub mod images;
pub mod modelfile;
pub mod plot;
pub mod preprocessing;
pub mod progress;
