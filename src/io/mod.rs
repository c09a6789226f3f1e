//! Files in and out: images and their conversion to model units ([`images`],
//! [`preprocessing`]), model files ([`modelfile`]), figures ([`plot`]) and progress on the
//! terminal or in logs ([`progress`]), the provenance of results ([`provenance`]) and claims
//! on work shared by several processes ([`run_lock`]).

pub mod files;
pub mod images;
pub mod modelfile;
pub mod plot;
pub mod preprocessing;
pub mod progress;
pub mod provenance;
pub mod run_lock;
