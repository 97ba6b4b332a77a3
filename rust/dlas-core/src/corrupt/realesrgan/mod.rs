//! Real-ESRGAN's high-order degradation (Wang et al. 2021) as one native, per-item
//! corruption: the low-quality input of a Real-ESRGAN-style model made from its
//! ground truth on the loader's CPU, with no GPU step.
//!
//! The stages, their operators and the distributions of their random parameters follow
//! the reference: BasicSR's `degradations.py` (kernels, noise), `img_process_util.py`
//! (`filter2D`, `USMSharp`), `diffjpeg.py`, and Real-ESRGAN's dataset (per-item kernels)
//! and model `feed_data` (the rest). Where the reference draws once per batch (resize,
//! noise kind, the second blur, the final order), this draws per item; every draw comes
//! from the item's [`Key`], so the same key gives the same degradation anywhere.
//!
//! Options are named as in Real-ESRGAN's training YAML, with the defaults of its
//! `train_realesrgan_x4plus.yml` ([`Options`]).

mod diffjpeg;
pub mod kernels;
mod noise;
mod options;
pub mod resize;

use rand_chacha::rand_core::RngCore;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use diffjpeg::{diff_jpeg, quality_factor};
pub use kernels::{KernelKind, KERNEL_NAMES};
pub use noise::vals_of;
pub use options::{Options, Raw, Stage};
pub use resize::{interpolate, interpolate_by, Mode, MODES};

use super::blur::{correlate, correlate_separable, reflect101};
use super::{Key, Rng};
use crate::error::Result;
use crate::planes::Planes;

/// One drawn blur kernel: a sinc filter (`omega` set) or a kernel of `kind`. Parameters
/// that do not apply are NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelDraw {
    pub sinc: bool,
    pub kind: Option<KernelKind>,
    pub size: usize,
    pub sigma_x: f64,
    pub sigma_y: f64,
    pub theta: f64,
    pub beta: f64,
    pub omega: f64,
}

impl KernelDraw {
    /// A sinc filter of `size` taps and cutoff `omega` (the other parameters NaN).
    pub fn sinc(size: usize, omega: f64) -> KernelDraw {
        KernelDraw {
            sinc: true,
            kind: None,
            size,
            sigma_x: f64::NAN,
            sigma_y: f64::NAN,
            theta: f64::NAN,
            beta: f64::NAN,
            omega,
        }
    }

    /// The kernel, `size x size` as f32 (its padding to 21 in the reference adds only
    /// zero taps).
    pub fn kernel(&self) -> Vec<f32> {
        let k = if self.sinc {
            kernels::circular_lowpass(self.omega, self.size, 0).0
        } else {
            let kind = self.kind.expect("a kernel draw has a kind or is a sinc");
            kernels::of_kind(
                kind,
                self.size,
                self.sigma_x,
                self.sigma_y,
                self.theta,
                self.beta,
            )
        };
        k.into_iter().map(|v| v as f32).collect()
    }
}

/// Which way a random resize went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpDown {
    Up,
    Down,
    Keep,
}

/// One random resize: its direction, factor and filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResizeDraw {
    pub updown: UpDown,
    pub scale: f64,
    pub mode: Mode,
}

/// One noise draw: Gaussian (`amount` is sigma in 8-bit units) or Poisson (`amount`
/// is the scale), colour or grey.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseDraw {
    pub gaussian: bool,
    pub amount: f64,
    pub grey: bool,
}

/// Every random parameter of one item's degradation.
#[derive(Clone, Debug, PartialEq)]
pub struct Draws {
    pub kernel1: KernelDraw,
    pub resize1: ResizeDraw,
    pub noise1: NoiseDraw,
    pub jpeg1: f32,
    pub second_blur: bool,
    pub kernel2: KernelDraw,
    pub resize2: ResizeDraw,
    pub noise2: NoiseDraw,
    pub jpeg2: f32,
    /// The final sinc filter, or None (the reference's pulse: no filtering).
    pub final_sinc: Option<KernelDraw>,
    /// True: resize and sinc, then JPEG; false: JPEG, then resize and sinc.
    pub resize_first: bool,
    pub final_mode: Mode,
    /// The seed of the item's noise values.
    pub noise_seed: [u8; 32],
}

/// The degraded item: its low-quality image and, when asked for, the sharpened ground
/// truth.
pub struct Degraded {
    pub lq: Planes,
    pub gt_usm: Option<Planes>,
}

/// A configured degradation.
#[derive(Clone, Debug, PartialEq)]
pub struct Degradation {
    opts: Options,
}

/// Uniform in `[lo, hi)`.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.unit()
}

/// An index drawn with the weights `probs` (which sum to one).
fn choose(rng: &mut Rng, probs: &[f64]) -> usize {
    let u = rng.unit() * probs.iter().sum::<f64>();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    // Rounding: the last choice with any weight.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// The kernel sizes drawn from: odd, from 7 (or the largest size, if smaller) to the
/// largest, as Real-ESRGAN's dataset draws from 7..21 for its 21.
fn kernel_sizes(largest: usize) -> Vec<usize> {
    (largest.min(7)..=largest).filter(|s| s % 2 == 1).collect()
}

impl Degradation {
    /// Checks every option (a named error for the first one out of range).
    pub fn new(raw: &Raw) -> Result<Degradation> {
        Ok(Degradation { opts: raw.check()? })
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn draw_blur(&self, rng: &mut Rng, second: bool) -> KernelDraw {
        let o = &self.opts;
        let b = if second { &o.second } else { &o.first };
        let sizes = kernel_sizes(b.blur_kernel_size);
        let size = sizes[rng.below(sizes.len())];
        let nan = f64::NAN;
        if rng.unit() < b.sinc_prob {
            // The reference's cutoff ranges for kernels of 7 to 21 taps.
            let lo = if size < 13 { 3.0 } else { 5.0 };
            let omega = uniform(rng, std::f64::consts::PI / lo, std::f64::consts::PI);
            return KernelDraw::sinc(size, omega);
        }
        let kind = b.kinds[choose(rng, &b.kernel_prob)];
        let sigma_x = uniform(rng, b.blur_sigma[0], b.blur_sigma[1]);
        let (sigma_y, theta) = if kind.isotropic() {
            (sigma_x, 0.0)
        } else {
            (
                uniform(rng, b.blur_sigma[0], b.blur_sigma[1]),
                uniform(rng, -std::f64::consts::PI, std::f64::consts::PI),
            )
        };
        let beta = match kind.beta_plateau() {
            None => nan,
            Some(plateau) => {
                let r = if plateau {
                    b.betap_range
                } else {
                    b.betag_range
                };
                // Half the draws below one, half above, as the reference.
                if rng.unit() < 0.5 {
                    uniform(rng, r[0], 1.0)
                } else {
                    uniform(rng, 1.0, r[1])
                }
            }
        };
        KernelDraw {
            sinc: false,
            kind: Some(kind),
            size,
            sigma_x,
            sigma_y,
            theta,
            beta,
            omega: nan,
        }
    }

    fn draw_resize(&self, rng: &mut Rng, second: bool) -> ResizeDraw {
        let o = &self.opts;
        let s = if second { &o.second } else { &o.first };
        let updown = [UpDown::Up, UpDown::Down, UpDown::Keep][choose(rng, &s.resize_prob)];
        let scale = match updown {
            UpDown::Up => uniform(rng, 1.0, s.resize_range[1]),
            UpDown::Down => uniform(rng, s.resize_range[0], 1.0),
            UpDown::Keep => 1.0,
        };
        let mode = MODES[rng.below(3)];
        ResizeDraw {
            updown,
            scale,
            mode,
        }
    }

    fn draw_noise(&self, rng: &mut Rng, second: bool) -> NoiseDraw {
        let o = &self.opts;
        let s = if second { &o.second } else { &o.first };
        let gaussian = rng.unit() < s.gaussian_noise_prob;
        let amount = if gaussian {
            uniform(rng, s.noise_range[0], s.noise_range[1])
        } else {
            uniform(rng, s.poisson_scale_range[0], s.poisson_scale_range[1])
        };
        let grey = rng.unit() < s.gray_noise_prob;
        NoiseDraw {
            gaussian,
            amount,
            grey,
        }
    }

    /// Every random parameter of the item keyed `key`.
    pub fn draw(&self, key: Key) -> Draws {
        let rng = &mut key.rng();
        let o = &self.opts;
        let kernel1 = self.draw_blur(rng, false);
        let kernel2 = self.draw_blur(rng, true);
        let final_sinc = (rng.unit() < o.final_sinc_prob).then(|| {
            let sizes = kernel_sizes(o.first.blur_kernel_size.max(o.second.blur_kernel_size));
            let size = sizes[rng.below(sizes.len())];
            let omega = uniform(rng, std::f64::consts::PI / 3.0, std::f64::consts::PI);
            KernelDraw::sinc(size, omega)
        });
        let resize1 = self.draw_resize(rng, false);
        let noise1 = self.draw_noise(rng, false);
        let jpeg1 = uniform(rng, o.first.jpeg_range[0], o.first.jpeg_range[1]) as f32;
        let second_blur = rng.unit() < o.second_blur_prob;
        let resize2 = self.draw_resize(rng, true);
        let noise2 = self.draw_noise(rng, true);
        let resize_first = rng.unit() < 0.5;
        let final_mode = MODES[rng.below(3)];
        let jpeg2 = uniform(rng, o.second.jpeg_range[0], o.second.jpeg_range[1]) as f32;
        let mut noise_seed = [0u8; 32];
        rng.0.fill_bytes(&mut noise_seed);
        Draws {
            kernel1,
            resize1,
            noise1,
            jpeg1,
            second_blur,
            kernel2,
            resize2,
            noise2,
            jpeg2,
            final_sinc,
            resize_first,
            final_mode,
            noise_seed,
        }
    }

    /// Degrades the ground truth `gt` (3 planes in `[0, 1]`) to `1 / scale` of its size
    /// (at least one pixel) with the draws of `key`.
    pub fn degrade(&self, gt: &Planes, scale: usize, key: Key) -> Degraded {
        let lq = ((gt.h / scale).max(1), (gt.w / scale).max(1));
        self.degrade_with(gt, scale, lq, &self.draw(key), 0)
    }

    /// Degrades `gt` with given draws to an LQ image of `lq` (height, width), `scale`
    /// setting the second resize's size as in the reference (`size / scale * factor`).
    /// `member` numbers the images degraded with one draw (the frames of a clip): each
    /// gets noise of its own.
    pub fn degrade_with(
        &self,
        gt: &Planes,
        scale: usize,
        lq: (usize, usize),
        d: &Draws,
        member: u64,
    ) -> Degraded {
        self.run(gt, scale, lq, d, member, &mut |_, _| {})
    }

    /// [`Degradation::degrade_with`], handing `seen` the image after each stage (by
    /// name: `usm`, `blur1`, `resize1`, `noise1`, `jpeg1`, `blur2`, `resize2`, `noise2`,
    /// then `jpeg2` and `resize_sinc` in the drawn order, and `lq`): the preview's rows.
    pub fn degrade_stages(
        &self,
        gt: &Planes,
        scale: usize,
        d: &Draws,
        seen: &mut dyn FnMut(&'static str, &Planes),
    ) -> Degraded {
        let lq = ((gt.h / scale).max(1), (gt.w / scale).max(1));
        self.run(gt, scale, lq, d, 0, seen)
    }

    fn run(
        &self,
        gt: &Planes,
        scale: usize,
        lq: (usize, usize),
        d: &Draws,
        member: u64,
        seen: &mut dyn FnMut(&'static str, &Planes),
    ) -> Degraded {
        assert!(gt.c == 3 && scale >= 1 && lq.0 > 0 && lq.1 > 0);
        // The reference degrades a larger image than the one it keeps, so the kept
        // one's edges are seldom the degraded image's. Here the item is mirrored out by
        // a margin of whole LQ pixels, degraded, and the margin cut off the LQ image:
        // without it, the edges of every item carry the borders' artefacts (the blurs'
        // reflections, DiffJPEG's black padding), a third more error there.
        let m = MARGIN.div_ceil(scale);
        let padded = reflect_pad(gt, m * scale);
        let (oh, ow) = (padded.h, padded.w);
        let (lh, lw) = (lq.0 + 2 * m, lq.1 + 2 * m);
        let mut seed = d.noise_seed;
        for (b, m) in seed.iter_mut().zip(member.to_le_bytes()) {
            *b ^= m;
        }
        let mut noise_rng = Xoshiro256PlusPlus::from_seed(seed);
        // The sharpened ground truth returned is that of the item itself.
        let usm = self.opts.gt_usm.then(|| usm_sharp(gt));
        // The first degradation, from the sharpened ground truth as the reference.
        let mut out = usm_sharp(&padded);
        drop(padded);
        seen("usm", &out);
        filter(&mut out, &d.kernel1.kernel(), d.kernel1.size);
        seen("blur1", &out);
        if d.resize1.updown != UpDown::Keep {
            out = interpolate_by(&out, d.resize1.scale, d.resize1.mode);
        }
        seen("resize1", &out);
        add_noise(&mut out, &d.noise1, &mut noise_rng);
        seen("noise1", &out);
        jpeg(&mut out, d.jpeg1);
        seen("jpeg1", &out);
        // The second.
        if d.second_blur {
            filter(&mut out, &d.kernel2.kernel(), d.kernel2.size);
        }
        seen("blur2", &out);
        // The reference truncates `size / scale * factor` to an integer.
        let h2 = ((oh as f64 / scale as f64 * d.resize2.scale) as usize).max(1);
        let w2 = ((ow as f64 / scale as f64 * d.resize2.scale) as usize).max(1);
        out = interpolate(&out, h2, w2, d.resize2.mode, None);
        seen("resize2", &out);
        add_noise(&mut out, &d.noise2, &mut noise_rng);
        seen("noise2", &out);
        // The final stage: [resize to the LQ size + sinc] and JPEG, in the drawn order.
        let resize_sinc = |img: &Planes| {
            let mut r = interpolate(img, lh, lw, d.final_mode, None);
            if let Some(s) = &d.final_sinc {
                filter(&mut r, &s.kernel(), s.size);
            }
            r
        };
        if d.resize_first {
            out = resize_sinc(&out);
            seen("resize_sinc", &out);
            jpeg(&mut out, d.jpeg2);
            seen("jpeg2", &out);
        } else {
            jpeg(&mut out, d.jpeg2);
            seen("jpeg2", &out);
            out = resize_sinc(&out);
            seen("resize_sinc", &out);
        }
        for v in out.data.iter_mut() {
            *v = (*v * 255.0).round_ties_even().clamp(0.0, 255.0) / 255.0;
        }
        let out = crop(&out, m, m, lq.0, lq.1);
        seen("lq", &out);
        Degraded {
            lq: out,
            gt_usm: usm,
        }
    }
}

/// The margin, in HQ pixels, the item is degraded with (rounded up to whole LQ
/// pixels): more than DiffJPEG's 16-pixel padding; a wider one measured no better.
pub const MARGIN: usize = 16;

/// `img` mirrored out by `p` pixels on every side (reflect-101, folded again when the
/// image is smaller than the margin).
fn reflect_pad(img: &Planes, p: usize) -> Planes {
    let (h, w) = (img.h, img.w);
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let fold = |i: usize, n: usize| reflect101(i as i64 - p as i64, n);
    let cols: Vec<usize> = (0..pw).map(|x| fold(x, w)).collect();
    let mut out = Planes::zeros(img.c, ph, pw);
    for c in 0..img.c {
        let src = img.plane(c);
        let dst = &mut out.data[c * ph * pw..(c + 1) * ph * pw];
        for y in 0..ph {
            let row = &src[fold(y, h) * w..][..w];
            for (o, &x) in dst[y * pw..(y + 1) * pw].iter_mut().zip(&cols) {
                *o = row[x];
            }
        }
    }
    out
}

/// The `h x w` window of `img` from `(top, left)`.
fn crop(img: &Planes, top: usize, left: usize, h: usize, w: usize) -> Planes {
    let mut data = Vec::with_capacity(img.c * h * w);
    for c in 0..img.c {
        let p = img.plane(c);
        for y in top..top + h {
            data.extend_from_slice(&p[y * img.w + left..][..w]);
        }
    }
    Planes {
        c: img.c,
        h,
        w,
        data,
    }
}

/// BasicSR's `filter2D` with one kernel.
pub fn filter(img: &mut Planes, k: &[f32], size: usize) {
    correlate(img, k, size)
}

/// Noise as the pipeline adds it (Gaussian of `sigma` or Poisson of `scale`), from
/// its own seed: one stage on its own.
pub fn add_noise_seeded(img: &mut Planes, gaussian: bool, amount: f64, grey: bool, seed: u64) {
    let n = NoiseDraw {
        gaussian,
        amount,
        grey,
    };
    add_noise(img, &n, &mut Xoshiro256PlusPlus::seed_from_u64(seed));
}

/// The `vals` Poisson noise uses for this image (or its grey version).
pub fn poisson_vals(img: &Planes, grey: bool) -> u32 {
    noise::vals_for(img, grey)
}

fn add_noise(img: &mut Planes, n: &NoiseDraw, rng: &mut Xoshiro256PlusPlus) {
    if n.gaussian {
        noise::gaussian(img, n.amount, n.grey, rng);
    } else {
        noise::poisson(img, n.amount, n.grey, rng);
    }
}

/// The reference's clamp to `[0, 1]` and its JPEG simulation.
fn jpeg(img: &mut Planes, quality: f32) {
    for v in img.data.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    diff_jpeg(img, quality);
}

/// The size of BasicSR's `USMSharp` kernel (its radius 50, made odd).
pub const USM_SIZE: usize = 51;

/// BasicSR's `USMSharp` (weight 0.5, threshold 10): the image plus half its difference
/// from a Gaussian blur (sigma 8 over 51 taps), clipped, where that difference is over
/// 10/255, blended in through the blurred mask of those places.
pub fn usm_sharp(img: &Planes) -> Planes {
    let k: Vec<f32> = kernels::opencv_gaussian_1d(USM_SIZE)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let mut blur = img.clone();
    correlate_separable(&mut blur, &k, &k);
    let mut mask = img.clone();
    for (m, (&v, &b)) in mask.data.iter_mut().zip(img.data.iter().zip(&blur.data)) {
        *m = if (v - b).abs() * 255.0 > 10.0 {
            1.0
        } else {
            0.0
        };
    }
    correlate_separable(&mut mask, &k, &k);
    let mut out = img.clone();
    for ((o, &b), &m) in out.data.iter_mut().zip(&blur.data).zip(&mask.data) {
        let v = *o;
        let sharp = (v + 0.5 * (v - b)).clamp(0.0, 1.0);
        *o = m * sharp + (1.0 - m) * v;
    }
    out
}

#[cfg(test)]
mod tests;
