//! Where the hole, the evaluation crop and the margins lie in an image.

use crate::model::ride::Ride;
use crate::tasks::sample::min_margin;
use anyhow::{bail, Result};

/// A rectangle of pixels (image coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rect {
    pub top: usize,
    pub left: usize,
    pub h: usize,
    pub w: usize,
}

impl Rect {
    pub(super) fn contains(&self, r: usize, c: usize) -> bool {
        r >= self.top && r < self.top + self.h && c >= self.left && c < self.left + self.w
    }
    pub(super) fn bottom(&self) -> usize {
        self.top + self.h
    }
    pub(super) fn right(&self) -> usize {
        self.left + self.w
    }
    /// One past the last row.
    pub fn bottom_excl(&self) -> usize {
        self.bottom()
    }
    /// One past the last column.
    pub fn right_excl(&self) -> usize {
        self.right()
    }
}

/// Where the hole and the evaluation crop lie in an `h × w` image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Geometry {
    pub image_h: usize,
    pub image_w: usize,
    pub hole: Rect,
    pub crop: Rect,
}

impl Geometry {
    /// Hole of `hole = (rows, cols)` centred at `center = (row, col)` (default the image centre;
    /// the hole's top-left is center − size/2), crop = hole + `context` pixels per side clipped
    /// to the image. Errors name the sizes when the hole does not fit or lacks context.
    pub fn new(
        model: &Ride<f32>,
        h: usize,
        w: usize,
        hole: (usize, usize),
        center: Option<(usize, usize)>,
        context: usize,
    ) -> Result<Self> {
        let nb = &model.nb;
        let need = min_margin(nb);
        let (hh, hw) = hole;
        if hh == 0 || hw == 0 {
            bail!("the hole is empty ({hh}×{hw})");
        }
        if hh > h || hw > w {
            bail!("hole {hh}×{hw} is larger than the {h}×{w} image");
        }
        if context < need {
            bail!(
                "context {context} is smaller than the model's neighbourhood margin {need} ({}×{} neighbourhood)",
                nb.rows,
                nb.cols
            );
        }
        let (cr, cc) = center.unwrap_or((h / 2, w / 2));
        if cr >= h || cc >= w {
            bail!("hole centre ({cr},{cc}) is outside the {h}×{w} image");
        }
        let (top, left) = (cr.checked_sub(hh / 2), cc.checked_sub(hw / 2));
        let bad = |what: String| -> anyhow::Error {
            anyhow::anyhow!(
                "hole {hh}×{hw} centred at ({cr},{cc}) in the {h}×{w} image touches the border: {what}; the model's {}×{} neighbourhood needs at least {need} observed pixels above, left and right of the hole and at least 1 row below",
                nb.rows,
                nb.cols
            )
        };
        let (Some(top), Some(left)) = (top, left) else {
            return Err(bad("it starts outside the image".into()));
        };
        if top + hh > h || left + hw > w {
            return Err(bad("it ends outside the image".into()));
        }
        let (above, below, lft, rgt) = (top, h - top - hh, left, w - left - hw);
        if above < need {
            return Err(bad(format!("{above} observed rows above")));
        }
        if lft < need {
            return Err(bad(format!("{lft} observed columns left")));
        }
        if rgt < need {
            return Err(bad(format!("{rgt} observed columns right")));
        }
        if below < 1 {
            return Err(bad("no observed row below".into()));
        }
        let hole = Rect {
            top,
            left,
            h: hh,
            w: hw,
        };
        let (ct, cl) = (above.min(context), lft.min(context));
        let crop = Rect {
            top: top - ct,
            left: left - cl,
            h: ct + hh + below.min(context),
            w: cl + hw + rgt.min(context),
        };
        Ok(Self {
            image_h: h,
            image_w: w,
            hole,
            crop,
        })
    }

    /// The hole in crop coordinates.
    pub(super) fn hole_in_crop(&self) -> Rect {
        Rect {
            top: self.hole.top - self.crop.top,
            left: self.hole.left - self.crop.left,
            ..self.hole
        }
    }
}
