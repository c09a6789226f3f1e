//! The `ride` command line: one module per group of subcommands, each with its arguments
//! (clap) and what it runs; `main.rs` only parses and dispatches.

pub mod codec;
pub mod eval;
pub mod experiments;
pub mod generate;
pub mod tools;

/// `WIDTHxHEIGHT` (also `×` or `X`), both positive.
pub(crate) fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!("invalid size '{s}': expected WIDTHxHEIGHT with positive integers, e.g. 256x256")
    };
    let (a, b) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: usize = a.trim().parse().map_err(|_| bad())?;
    let h: usize = b.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok((w, h))
}
/// `ROW,COL` (non-negative integers).
pub(crate) fn parse_center(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!("invalid centre '{s}': expected ROW,COL with non-negative integers, e.g. 160,240")
    };
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}
/// `LO,HI` with LO ≤ HI.
pub(crate) fn parse_clip(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("invalid clip range '{s}': expected LO,HI with numbers LO ≤ HI, e.g. 0,1");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let lo: f64 = a.trim().parse().map_err(|_| bad())?;
    let hi: f64 = b.trim().parse().map_err(|_| bad())?;
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}
