//! Defaults of the config fields (the paper's settings), one function per field.

use super::OptimizerKind;

pub fn seed() -> u64 {
    1
}
pub fn dequantize() -> bool {
    true
}
pub fn test_gray_png() -> bool {
    true
}
pub fn hiddens() -> Vec<usize> {
    vec![64]
}
pub fn nb_size() -> usize {
    5
}
pub fn components() -> usize {
    32
}
pub fn scales() -> usize {
    4
}
pub fn features() -> usize {
    32
}
pub fn whitening_samples() -> usize {
    500_000
}
pub fn optimizer() -> OptimizerKind {
    OptimizerKind::Sgd
}
pub fn batch_size() -> usize {
    50
}
pub fn momentum() -> f64 {
    0.9
}
pub fn flip() -> bool {
    true
}
pub fn chunks() -> usize {
    2
}
pub fn epochs() -> usize {
    1
}
pub fn finetune_enabled() -> bool {
    true
}
pub fn finetune_cells() -> usize {
    1_000_000
}
pub fn max_iter() -> u64 {
    500
}
pub fn history() -> usize {
    20
}
pub fn validation_cells() -> usize {
    100_000
}
pub fn check_every() -> usize {
    5
}
pub fn tile() -> usize {
    64
}
