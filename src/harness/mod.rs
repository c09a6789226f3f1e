//! Running the paper's experiments: hyperparameter grids ([`sweep`]) and every table, sweep,
//! figure and the report at one scale ([`reproduce`]).

pub mod codec_compare;
pub mod reproduce;
pub mod sweep;
