//! The image corruptor (docs/spec.md §7): the low-quality inputs of training, made from clean
//! images by a configured list of corruptions, each at a random strength.
//!
//! Every random choice of one call (which random corruptions, each strength, blur
//! angles, resampling filters, noise values...) comes from one ChaCha8 stream keyed by
//! a [`Key`] — `(seed, epoch, index, nonce)` — so the same key gives the same
//! corruption in any process, on any thread, in any batch. (DLAS mixes three generators,
//! only one of them seeded.)
//!
//! Images are planar float32 RGB ([`Planes`], `3 x H x W`), nominally in `[0, 1]`.
//! Each family of corruptions has a file of its own (blur, colour, noise, jpeg,
//! resample, displace); this module names them, draws strengths and applies them.

pub(crate) mod blur;
mod bulk;
mod colour;
mod displace;
mod jpeg;
mod keys;
mod noise;
pub mod realesrgan;
mod resample;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{CoreError, Result};
use crate::planes::{Filter, Planes};
use bulk::Bulk;
pub use keys::Keys;

/// One corruption, by what it does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    None,
    ColorQuantization,
    ColorJitter,
    GaussianBlur,
    MotionBlur,
    BlockNoise,
    /// `lq_resampling` (factor from the strength) or `lq_resampling4x` (always 4).
    LqResampling {
        always4: bool,
    },
    ColorShift,
    Interlacing,
    ChromaticAberration,
    /// `noise` (amplitude from the strength) or `noise-5` (always 5/255).
    Noise {
        fixed5: bool,
    },
    /// A JPEG round trip at quality `int((1 - r) * range) + lo`.
    Jpeg {
        lo: u8,
        range: u8,
    },
    Saturation,
    Greyscale,
}

/// Every corruption name and what it means.
pub const NAMES: &[(&str, Kind)] = &[
    ("none", Kind::None),
    ("color_quantization", Kind::ColorQuantization),
    ("color_jitter", Kind::ColorJitter),
    ("gaussian_blur", Kind::GaussianBlur),
    ("motion_blur", Kind::MotionBlur),
    ("block_noise", Kind::BlockNoise),
    ("lq_resampling", Kind::LqResampling { always4: false }),
    ("lq_resampling4x", Kind::LqResampling { always4: true }),
    ("color_shift", Kind::ColorShift),
    ("interlacing", Kind::Interlacing),
    ("chromatic_aberration", Kind::ChromaticAberration),
    ("noise", Kind::Noise { fixed5: false }),
    ("noise-5", Kind::Noise { fixed5: true }),
    ("jpeg", Kind::Jpeg { lo: 10, range: 20 }),
    ("jpeg-low", Kind::Jpeg { lo: 15, range: 10 }),
    ("jpeg-medium", Kind::Jpeg { lo: 23, range: 25 }),
    ("jpeg-broad", Kind::Jpeg { lo: 15, range: 60 }),
    ("jpeg-normal", Kind::Jpeg { lo: 47, range: 35 }),
    ("saturation", Kind::Saturation),
    ("greyscale", Kind::Greyscale),
];

impl Kind {
    /// The corruption called `name` (exact names only).
    pub fn parse(name: &str) -> Option<Kind> {
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
    }
}

/// What keys one call's random stream. The dataset uses `(random_seed, epoch, item
/// index, 0)`; other callers choose their own `nonce` to get separate streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    pub seed: u64,
    pub epoch: u64,
    pub index: u64,
    pub nonce: u64,
}

impl Key {
    fn rng(&self) -> Rng {
        let mut bytes = [0u8; 32];
        for (i, v) in [self.seed, self.epoch, self.index, self.nonce]
            .into_iter()
            .enumerate()
        {
            bytes[i * 8..(i + 1) * 8].copy_from_slice(&v.to_le_bytes());
        }
        Rng(ChaCha8Rng::from_seed(bytes))
    }
}

/// The random draws of a dataset's own augmentations (ImageFolderDataset's flip, colour
/// jitter and alt tile), from a key of their own.
pub struct Augment(Rng);

impl Augment {
    pub fn new(key: Key) -> Augment {
        Augment(key.rng())
    }

    /// True with probability 1/2.
    pub fn coin(&mut self) -> bool {
        self.0.unit() < 0.5
    }

    /// Uniform integer in `[0, n)` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.0.unit(), self.0.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// DLAS's `kornia_color_jitter_numpy(img, s)` (brightness, contrast, saturation and
    /// hue all `s`, in a random order; nothing when `s * 255 <= 1`), with draws keyed by
    /// `key`: the same key jitters two images alike.
    pub fn color_jitter(img: &mut Planes, s: f64, key: Key) {
        colour::color_jitter(img, s, &mut key.rng());
    }

    /// [`Augment::color_jitter`] on three `h x w` planes stored one after the other.
    pub fn color_jitter_planes(data: &mut [f32], s: f64, key: Key) {
        colour::color_jitter_planes(data, s, &mut key.rng());
    }
}

/// The random stream of one call.
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    /// Uniform in `[0, 1)` with 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, 1)` with 24 bits.
    pub(crate) fn unit_f32(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A fast generator for bulk values (noise), seeded from this stream: four
    /// xoshiro256++ streams side by side ([`Bulk`]), several times faster than ChaCha8
    /// per value; their 2^256 periods and equidistribution are ample for pixel noise.
    pub(crate) fn bulk(&mut self) -> Bulk {
        let mut seeds = [[0u8; 32]; 4];
        for s in &mut seeds {
            self.0.fill_bytes(s);
        }
        Bulk::from_seeds(&seeds)
    }

    /// Uniform integer in `[0, n)` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        // Multiply-shift: unbiased enough for the small n used here (bias < n / 2^64).
        ((self.0.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform integer in `[lo, hi]`.
    pub(crate) fn range_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
}

/// Every plane of `img`, mutable.
fn planes_mut(img: &mut Planes) -> impl Iterator<Item = &mut [f32]> {
    let n = img.h * img.w;
    img.data.chunks_exact_mut(n.max(1))
}

/// The largest `corruption_blur_scale` accepted (DLAS's default is 1).
pub const MAX_BLUR_SCALE: f64 = 100.0;

/// The most `fixed_corruptions`, and the largest `num_corrupts_per_image`, accepted:
/// every image goes through each of them (DLAS's configs use a handful), and the
/// random picks and the entropy of a call are allocated from these counts.
pub const MAX_CORRUPTIONS: usize = 64;

/// A configured corruptor (docs/spec.md §7 options).
#[derive(Clone, Debug, PartialEq)]
pub struct Corruptor {
    fixed: Vec<Kind>,
    random: Vec<Kind>,
    num_random: usize,
    blur_scale: f64,
    cosine_bias: bool,
    /// Real-ESRGAN's degradation in place of the named corruptions: it makes the LQ
    /// image from the HQ one.
    degradation: Option<realesrgan::Degradation>,
}

fn parse_list(option: &str, names: &[String]) -> Result<Vec<Kind>> {
    names
        .iter()
        .map(|n| {
            Kind::parse(n).ok_or_else(|| {
                let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                CoreError::option(
                    option,
                    format!("unknown corruption {n:?}; known: {}", known.join(", ")),
                )
            })
        })
        .collect()
}

impl Corruptor {
    /// Checks every name when built (DLAS fails on an unknown one only when it is first
    /// drawn).
    pub fn new(
        fixed: &[String],
        random: &[String],
        num_random: usize,
        blur_scale: f64,
        cosine_bias: bool,
    ) -> Result<Corruptor> {
        if fixed.len() > MAX_CORRUPTIONS {
            return Err(CoreError::option(
                "fixed_corruptions",
                format!("at most {MAX_CORRUPTIONS} corruptions, got {}", fixed.len()),
            ));
        }
        if num_random > MAX_CORRUPTIONS {
            return Err(CoreError::option(
                "num_corrupts_per_image",
                format!("must be an integer from 0 to {MAX_CORRUPTIONS}, got {num_random}"),
            ));
        }
        let fixed = parse_list("fixed_corruptions", fixed)?;
        let random = parse_list("random_corruptions", random)?;
        if num_random > 0 && random.is_empty() {
            return Err(CoreError::option(
                "num_corrupts_per_image",
                format!("is {num_random} but random_corruptions is empty"),
            ));
        }
        // The blur kernels grow with it (a Gaussian of 12 * scale + 1 taps, a motion
        // kernel of (3 * scale + 1)^2): bounded so that no value can exhaust memory.
        if !(0.0..=MAX_BLUR_SCALE).contains(&blur_scale) {
            return Err(CoreError::option(
                "corruption_blur_scale",
                format!("must be a number in [0, {MAX_BLUR_SCALE}], got {blur_scale}"),
            ));
        }
        Ok(Corruptor {
            fixed,
            random,
            num_random,
            blur_scale,
            cosine_bias,
            degradation: None,
        })
    }

    /// A corruptor that makes LQ images with Real-ESRGAN's degradation.
    pub fn degrading(degradation: realesrgan::Degradation) -> Corruptor {
        Corruptor {
            fixed: Vec::new(),
            random: Vec::new(),
            num_random: 0,
            blur_scale: 1.0,
            cosine_bias: false,
            degradation: Some(degradation),
        }
    }

    /// The Real-ESRGAN degradation this corruptor applies, if it is one.
    pub fn degradation(&self) -> Option<&realesrgan::Degradation> {
        self.degradation.as_ref()
    }

    /// How many fixed corruptions (strengths reported per image).
    pub fn fixed_len(&self) -> usize {
        self.fixed.len()
    }

    /// True when a call changes nothing and draws nothing (no fixed corruption and no
    /// random draw), as DLAS short-cuts it.
    pub fn is_noop(&self) -> bool {
        self.fixed.is_empty() && self.num_random == 0 && self.degradation.is_none()
    }

    /// True when no configured corruption does anything (only `none`s), so the
    /// pipeline may skip the call without changing any pixel.
    pub fn changes_nothing(&self) -> bool {
        self.degradation.is_none()
            && (self.is_noop()
                || (self.fixed.iter().all(|k| *k == Kind::None)
                    && (self.num_random == 0 || self.random.iter().all(|k| *k == Kind::None))))
    }

    /// A strength: uniform, or `1 - cos(u * pi / 2)` with the cosine bias.
    fn strength(&self, rng: &mut Rng) -> f64 {
        let u = rng.unit();
        if self.cosine_bias {
            1.0 - (u * std::f64::consts::FRAC_PI_2).cos()
        } else {
            u
        }
    }

    /// Corrupts `imgs` in place, all with the same random picks (one draw of
    /// `num_corrupts_per_image` per call, as DLAS) and each with its own strengths.
    /// Returns the strengths of the fixed corruptions, image after image (DLAS's
    /// "entropy").
    pub fn corrupt(&self, imgs: &mut [&mut Planes], key: Key) -> Result<Vec<f64>> {
        if let Some(d) = &self.degradation {
            // Real-ESRGAN's degradation at the image's own size, one draw for the call.
            let draws = d.draw(key);
            for (i, img) in imgs.iter_mut().enumerate() {
                let size = (img.h, img.w);
                if size.0 > 0 && size.1 > 0 && img.c == 3 {
                    **img = d.degrade_with(img, 1, size, &draws, i as u64).lq;
                }
            }
            return Ok(Vec::new());
        }
        let mut rng = key.rng();
        let picks: Vec<Kind> = (0..self.num_random)
            .map(|_| self.random[rng.below(self.random.len())])
            .collect();
        let noisy = picks
            .iter()
            .chain(&self.fixed)
            .any(|k| matches!(k, Kind::Noise { .. }));
        let mut entropy = Vec::with_capacity(self.fixed.len() * imgs.len());
        for img in imgs.iter_mut() {
            let mut undo = Vec::new();
            for &k in &picks {
                let r = self.strength(&mut rng);
                self.apply(img, k, r, noisy, &mut rng, &mut undo)?;
            }
            for &k in &self.fixed {
                let r = self.strength(&mut rng);
                self.apply(img, k, r, noisy, &mut rng, &mut undo)?;
                entropy.push(r);
            }
            // Resampling is undone after everything else: grown back (bilinear) to the
            // size before each shrink, the last shrink first.
            for &(h, w) in undo.iter().rev() {
                resample::resize_to(img, h, w, Filter::Linear);
            }
        }
        Ok(entropy)
    }

    /// Applies the one corruption called `name` at strength `r` (clamped to `[0, 1]`)
    /// to `img`, with its random details (blur angle, filter, noise...) drawn from
    /// `key`, and undoes a shrink as [`Corruptor::corrupt`] does. This is what a call
    /// that drew that strength for that corruption alone does: the preview tool shows
    /// each corruption at chosen strengths with it.
    pub fn apply_named(
        name: &str,
        r: f64,
        blur_scale: f64,
        img: &mut Planes,
        key: Key,
    ) -> Result<()> {
        let c = Corruptor::new(&[name.to_string()], &[], 0, blur_scale, false)?;
        let kind = c.fixed[0];
        let mut rng = key.rng();
        let mut undo = Vec::new();
        let noisy = matches!(kind, Kind::Noise { .. });
        c.apply(img, kind, r.clamp(0.0, 1.0), noisy, &mut rng, &mut undo)?;
        for &(h, w) in undo.iter().rev() {
            resample::resize_to(img, h, w, Filter::Linear);
        }
        Ok(())
    }

    fn apply(
        &self,
        img: &mut Planes,
        kind: Kind,
        r: f64,
        noisy: bool,
        rng: &mut Rng,
        undo: &mut Vec<(usize, usize)>,
    ) -> Result<()> {
        match kind {
            Kind::None => {}
            Kind::ColorQuantization => colour::quantize(img, 1 << ((r * 10.0 / 3.0) as u32 + 2)),
            Kind::ColorJitter => colour::color_jitter(img, 0.2 * r, rng),
            Kind::GaussianBlur => blur::gaussian_blur(img, self.blur_scale * r * 1.5),
            Kind::MotionBlur => {
                let len = (self.blur_scale * r * 3.0 + 1.0) as usize;
                let angle = rng.range_inclusive(0, 360);
                blur::motion_blur(img, len, angle as f64);
            }
            Kind::BlockNoise => noise::block_noise(img, r, rng),
            Kind::LqResampling { always4 } => {
                let factor = if always4 || r >= 0.7 {
                    4
                } else if r >= 0.3 {
                    2
                } else {
                    1
                };
                let filter = [
                    Filter::Nearest,
                    Filter::Cubic,
                    Filter::Linear,
                    Filter::Lanczos4,
                ][rng.below(4)];
                let (h, w) = (img.h / factor, img.w / factor);
                if factor > 1 && h > 0 && w > 0 {
                    undo.push((img.h, img.w));
                    resample::resize_to(img, h, w, filter);
                }
            }
            Kind::ColorShift => colour::color_shift(img, r, rng),
            Kind::Interlacing => displace::interlace(img, r, rng),
            Kind::ChromaticAberration => displace::chromatic_aberration(img, r, rng),
            Kind::Noise { fixed5 } => {
                let amp = if fixed5 { 5.0 / 255.0 } else { r * 6.0 / 255.0 };
                noise::add_noise(img, amp as f32, rng);
            }
            Kind::Jpeg { lo, range } => {
                // DLAS skips the JPEG round trip when a noise corruption is applied too.
                if !noisy {
                    let q = ((1.0 - r) * range as f64) as u8 + lo;
                    jpeg::jpeg_round_trip(img, q)?;
                }
            }
            Kind::Saturation => colour::saturate(img, (0.3 * r) as f32),
            Kind::Greyscale => colour::greyscale(img),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(h: usize, w: usize) -> Planes {
        let mut data = Vec::with_capacity(3 * h * w);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let v = ((x * 7 + y * 3 + c * 40) % 97) as f32 / 97.0;
                    data.push(0.1 + 0.8 * v);
                }
            }
        }
        Planes { c: 3, h, w, data }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn corruption_counts_are_bounded_by_name() {
        let many = names(&["jpeg"; MAX_CORRUPTIONS + 1]);
        let err = Corruptor::new(&many, &[], 0, 1.0, true).unwrap_err();
        assert!(err.to_string().contains("`fixed_corruptions`"), "{err}");
        let jpeg = names(&["jpeg"]);
        let err = Corruptor::new(&[], &jpeg, 1 << 40, 1.0, true).unwrap_err();
        assert!(
            err.to_string().contains("`num_corrupts_per_image`"),
            "{err}"
        );
        assert!(Corruptor::new(&many[1..], &jpeg, MAX_CORRUPTIONS, 1.0, true).is_ok());
    }

    fn key(index: u64) -> Key {
        Key {
            seed: 7,
            epoch: 0,
            index,
            nonce: 0,
        }
    }

    #[test]
    fn unknown_names_are_rejected_when_built() {
        let e = Corruptor::new(&names(&["jpeg-broad", "jpeg-ultra"]), &[], 0, 1.0, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fixed_corruptions") && e.contains("jpeg-ultra"),
            "{e}"
        );
        assert!(e.contains("gaussian_blur"), "lists the known names: {e}");
        let e = Corruptor::new(&[], &names(&["noise-9"]), 1, 1.0, true).unwrap_err();
        assert!(e.to_string().contains("random_corruptions"));
        assert!(Corruptor::new(&[], &[], 2, 1.0, true).is_err());
    }

    #[test]
    fn same_key_same_result_other_key_other_result() {
        let all: Vec<String> = NAMES.iter().map(|(n, _)| n.to_string()).collect();
        let c = Corruptor::new(&names(&["gaussian_blur"]), &all, 3, 1.0, true).unwrap();
        let run = |k: Key| {
            let mut img = photo(32, 48);
            let e = c.corrupt(&mut [&mut img], k).unwrap();
            (img, e)
        };
        assert_eq!(run(key(3)), run(key(3)));
        assert_ne!(run(key(3)), run(key(4)));
        let other_epoch = Key { epoch: 1, ..key(3) };
        assert_ne!(run(key(3)), run(other_epoch));
    }

    #[test]
    fn every_corruption_keeps_the_size_and_something_changes() {
        for &(name, kind) in NAMES {
            let c = Corruptor::new(&names(&[name]), &[], 0, 1.0, false).unwrap();
            let mut changed = false;
            for i in 0..8 {
                let mut img = photo(64, 48);
                let before = img.clone();
                let e = c.corrupt(&mut [&mut img], key(i)).unwrap();
                assert_eq!(e.len(), 1);
                assert_eq!((img.c, img.h, img.w), (3, 64, 48), "{name}");
                assert!(img.data.iter().all(|v| v.is_finite()), "{name}");
                changed |= img != before;
            }
            assert_eq!(changed, kind != Kind::None, "{name}");
        }
    }

    #[test]
    fn jpeg_is_skipped_when_noise_is_applied() {
        let c = Corruptor::new(&names(&["jpeg", "noise-5"]), &[], 0, 1.0, true).unwrap();
        let n = Corruptor::new(&names(&["none", "noise-5"]), &[], 0, 1.0, true).unwrap();
        let (mut a, mut b) = (photo(16, 16), photo(16, 16));
        c.corrupt(&mut [&mut a], key(1)).unwrap();
        n.corrupt(&mut [&mut b], key(1)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn strengths_follow_the_cosine_bias() {
        let biased = Corruptor::new(&names(&["none"]), &[], 0, 1.0, true).unwrap();
        let flat = Corruptor::new(&names(&["none"]), &[], 0, 1.0, false).unwrap();
        let mean = |c: &Corruptor| {
            (0..4000)
                .map(|i| c.corrupt(&mut [&mut photo(1, 1)], key(i)).unwrap()[0])
                .sum::<f64>()
                / 4000.0
        };
        // E[1 - cos(u pi / 2)] = 1 - 2 / pi = 0.363; E[u] = 0.5.
        assert!((mean(&biased) - 0.363).abs() < 0.02);
        assert!((mean(&flat) - 0.5).abs() < 0.02);
    }

    #[test]
    fn each_image_of_a_call_gets_its_own_strengths_and_undo() {
        let c = Corruptor::new(
            &names(&["lq_resampling4x", "saturation"]),
            &[],
            0,
            1.0,
            true,
        )
        .unwrap();
        let (mut a, mut b) = (photo(16, 16), photo(12, 20));
        let e = c.corrupt(&mut [&mut a, &mut b], key(9)).unwrap();
        assert_eq!(e.len(), 4);
        assert_ne!(e[1], e[3]);
        assert_eq!((a.h, a.w, b.h, b.w), (16, 16, 12, 20));
    }

    #[test]
    fn a_named_corruption_grows_with_its_strength_and_keeps_the_size() {
        let diff = |name: &str, r: f64| {
            let mut img = photo(24, 20);
            Corruptor::apply_named(name, r, 1.0, &mut img, key(3)).unwrap();
            assert_eq!((img.h, img.w), (24, 20));
            let orig = photo(24, 20);
            img.data
                .iter()
                .zip(&orig.data)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>()
        };
        assert_eq!(diff("gaussian_blur", 0.0), 0.0);
        assert!(diff("gaussian_blur", 1.0) > diff("gaussian_blur", 0.3));
        assert!(diff("lq_resampling", 1.0) > 0.0);
        assert!(diff("jpeg-broad", 1.0) > diff("jpeg-broad", 0.0));
        assert!(Corruptor::apply_named("blurry", 0.5, 1.0, &mut photo(4, 4), key(0)).is_err());
    }
}
