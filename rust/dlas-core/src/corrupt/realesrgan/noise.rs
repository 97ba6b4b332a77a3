//! The noise of the degradation, as BasicSR's `*_noise_pt` functions make it for one
//! image: Gaussian (`sigma` in 8-bit units) and Poisson (shot) noise, in colour or grey
//! (one value per pixel on all three channels), added and clipped to `[0, 1]`.

use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::rand_core::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::planes::Planes;

/// torchvision's `rgb_to_grayscale` weights.
const GREY: [f32; 3] = [0.2989, 0.587, 0.114];

fn clip01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

/// Adds Gaussian noise of standard deviation `sigma / 255`, one draw per value or (grey)
/// per pixel, and clips.
pub fn gaussian(img: &mut Planes, sigma: f64, grey: bool, rng: &mut Xoshiro256PlusPlus) {
    let n = img.h * img.w;
    let s = (sigma / 255.0) as f32;
    if grey {
        let noise: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(rng))
            .map(|z: f32| z * s)
            .collect();
        for plane in img.data.chunks_exact_mut(n.max(1)) {
            for (v, z) in plane.iter_mut().zip(&noise) {
                *v = clip01(*v + z);
            }
        }
    } else {
        for v in img.data.iter_mut() {
            let z: f32 = StandardNormal.sample(rng);
            *v = clip01(*v + z * s);
        }
    }
}

/// `v` rounded to 8 bits: `clamp(round(v * 255), 0, 255)` (torch's round: half to even).
fn level(v: f32) -> u8 {
    (v * 255.0).round_ties_even().clamp(0.0, 255.0) as u8
}

/// The reference's `vals`: the number of distinct 8-bit levels, rounded up to a power of
/// two.
pub fn vals_of(levels: &[u8]) -> u32 {
    let mut seen = [false; 256];
    for &l in levels {
        seen[l as usize] = true;
    }
    let count = seen.iter().filter(|&&s| s).count().max(1) as u32;
    count.next_power_of_two()
}

/// The 8-bit levels Poisson noise is computed from: the image's, or (grey) its grey
/// version's.
fn levels_of(img: &Planes, grey: bool) -> Vec<u8> {
    let n = img.h * img.w;
    if grey && img.c == 3 {
        let (r, rest) = img.data.split_at(n);
        let (g, b) = rest.split_at(n);
        (0..n)
            .map(|i| level(GREY[0] * r[i] + GREY[1] * g[i] + GREY[2] * b[i]))
            .collect()
    } else {
        img.data.iter().map(|&v| level(v)).collect()
    }
}

/// [`vals_of`] the levels Poisson noise uses.
pub fn vals_for(img: &Planes, grey: bool) -> u32 {
    vals_of(&levels_of(img, grey))
}

/// Samples of Poisson(`lambda`) by inverting its distribution function: the table of
/// cumulative probabilities up to where the tail is below f64's resolution, and a guide
/// table (Chen and Asau) that starts each search at most a step or two from its answer.
struct InverseCdf {
    cdf: Vec<f64>,
    /// `guide[j]`: the first `k` with `cdf[k] > j / guide.len()`.
    guide: Vec<u32>,
}

impl InverseCdf {
    fn new(lambda: f64) -> InverseCdf {
        let mut p = (-lambda).exp();
        let mut cdf = vec![p];
        let mut sum = p;
        let mut k = 0f64;
        // Beyond lambda, terms fall fast; stop once they are far below 2^-53 of the sum
        // (or, whatever happens, at lambda + 40 sqrt(lambda) + 40).
        let limit = lambda + 40.0 * lambda.sqrt() + 40.0;
        while k < limit && sum < 1.0 && !(k > lambda && p < 1e-20) {
            k += 1.0;
            p *= lambda / k;
            sum += p;
            cdf.push(sum);
        }
        let m = cdf.len();
        let mut guide = Vec::with_capacity(m);
        let mut at = 0usize;
        for j in 0..m {
            let u = j as f64 / m as f64;
            while at < m - 1 && cdf[at] <= u {
                at += 1;
            }
            guide.push(at as u32);
        }
        InverseCdf { cdf, guide }
    }

    /// The smallest `k` with `cdf[k] > u` (the last entry if none).
    fn sample(&self, u: f64) -> u32 {
        let m = self.cdf.len();
        let mut k = self.guide[((u * m as f64) as usize).min(m - 1)] as usize;
        while k < m - 1 && self.cdf[k] <= u {
            k += 1;
        }
        k as u32
    }
}

fn unit(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Poisson noise of the 8-bit levels `levels` (one image or its grey version):
/// `poisson(l / 255 * vals) / vals - l / 255` for each, `vals` from [`vals_of`].
fn poisson_noise(levels: &[u8], rng: &mut Xoshiro256PlusPlus) -> Vec<f32> {
    let vals = vals_of(levels) as f32;
    let mut tables: Vec<Option<InverseCdf>> = (0..256).map(|_| None).collect();
    levels
        .iter()
        .map(|&l| {
            let v = l as f32 / 255.0;
            let table =
                tables[l as usize].get_or_insert_with(|| InverseCdf::new((v * vals) as f64));
            table.sample(unit(rng)) as f32 / vals - v
        })
        .collect()
}

/// Adds Poisson noise times `scale` and clips: the noise of the image rounded to 8 bits,
/// or (grey) of its grey version rounded, on all three channels.
pub fn poisson(img: &mut Planes, scale: f64, grey: bool, rng: &mut Xoshiro256PlusPlus) {
    let n = img.h * img.w;
    let s = scale as f32;
    let levels = levels_of(img, grey);
    let noise = poisson_noise(&levels, rng);
    if grey && img.c == 3 {
        for plane in img.data.chunks_exact_mut(n.max(1)) {
            for (v, z) in plane.iter_mut().zip(&noise) {
                *v = clip01(*v + z * s);
            }
        }
    } else {
        for (v, z) in img.data.iter_mut().zip(noise) {
            *v = clip01(*v + z * s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::SeedableRng;

    fn rng() -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(11)
    }

    #[test]
    fn vals_is_the_level_count_rounded_up_to_a_power_of_two() {
        assert_eq!(vals_of(&[3]), 1);
        assert_eq!(vals_of(&[3, 3, 9]), 2);
        assert_eq!(vals_of(&[1, 2, 3]), 4);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(vals_of(&all), 256);
        assert_eq!(vals_of(&all[..129]), 256);
    }

    #[test]
    fn the_guided_search_finds_what_a_binary_search_finds() {
        for lambda in [0.0, 0.3, 7.5, 100.0, 256.0] {
            let t = InverseCdf::new(lambda);
            let mut r = rng();
            for _ in 0..20_000 {
                let u = unit(&mut r);
                let want = t.cdf.partition_point(|&c| c <= u).min(t.cdf.len() - 1);
                assert_eq!(t.sample(u) as usize, want, "{lambda} {u}");
            }
        }
    }

    #[test]
    fn poisson_samples_have_the_mean_and_variance_of_lambda() {
        for lambda in [0.0, 0.7, 5.0, 60.0, 256.0] {
            let t = InverseCdf::new(lambda);
            let mut r = rng();
            let xs: Vec<f64> = (0..200_000)
                .map(|_| t.sample(unit(&mut r)) as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            let tol = 0.02 * lambda.max(0.5);
            assert!((mean - lambda).abs() < tol, "{lambda}: mean {mean}");
            assert!((var - lambda).abs() < 4.0 * tol, "{lambda}: var {var}");
        }
    }

    #[test]
    fn grey_noise_is_the_same_on_every_channel() {
        let n = 64 * 64;
        let data: Vec<f32> = (0..3 * n)
            .map(|i| ((i % 97) as f32 / 200.0) + 0.2)
            .collect();
        let mut img = Planes {
            c: 3,
            h: 64,
            w: 64,
            data: data.clone(),
        };
        gaussian(&mut img, 10.0, true, &mut rng());
        let d: Vec<f32> = img.data.iter().zip(&data).map(|(a, b)| a - b).collect();
        assert!((d[5] - d[n + 5]).abs() < 1e-6 && (d[5] - d[2 * n + 5]).abs() < 1e-6);
        let mut img = Planes {
            c: 3,
            h: 64,
            w: 64,
            data: data.clone(),
        };
        poisson(&mut img, 1.0, true, &mut rng());
        let d: Vec<f32> = img.data.iter().zip(&data).map(|(a, b)| a - b).collect();
        let same = (0..n).filter(|&i| (d[i] - d[n + i]).abs() < 1e-6).count();
        assert!(same > n - 16, "{same} of {n}"); // clipping may part a few
        assert!(d.iter().any(|&v| v != 0.0));
    }
}
