//! Files in and out: images and their conversion to model units ([`images`],
//! [`preprocessing`]), model files ([`modelfile`]), figures ([`plot`]) and progress on the
//! terminal or in logs ([`progress`]), and the provenance of results ([`provenance`]).

pub mod files;
pub mod images;
pub mod modelfile;
pub mod plot;
pub mod preprocessing;
pub mod progress;
pub mod provenance;
