//! What a trained model is used for: scoring images ([`eval`], with EoRIDE), drawing samples
//! ([`sample`]) and filling holes ([`inpaint`]).

pub mod discrete;
pub mod eval;
pub mod inpaint;
pub mod sample;
