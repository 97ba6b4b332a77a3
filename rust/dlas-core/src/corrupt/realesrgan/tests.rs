use super::*;

fn photo(h: usize, w: usize) -> Planes {
    let mut data = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = ((x * 7 + y * 3 + c * 40) % 97) as f32 / 97.0;
                let edge = if x > w / 2 { 0.3 } else { 0.0 };
                data.push((0.1 + 0.6 * v + edge).min(1.0));
            }
        }
    }
    Planes { c: 3, h, w, data }
}

fn key(index: u64) -> Key {
    Key {
        seed: 5,
        epoch: 0,
        index,
        nonce: 0,
    }
}

fn default() -> Degradation {
    Degradation::new(&Raw::default()).unwrap()
}

#[test]
fn the_lq_is_the_scaled_size_in_8_bit_steps_and_the_same_key_gives_the_same() {
    let d = default();
    let gt = photo(64, 48);
    for i in 0..12 {
        let a = d.degrade(&gt, 4, key(i));
        assert_eq!((a.lq.c, a.lq.h, a.lq.w), (3, 16, 12));
        for &v in &a.lq.data {
            assert!((0.0..=1.0).contains(&v));
            assert!(((v * 255.0).round() - v * 255.0).abs() < 1e-3);
        }
        assert!(a.gt_usm.is_none());
        assert_eq!(a.lq, d.degrade(&gt, 4, key(i)).lq);
    }
    assert_ne!(d.degrade(&gt, 4, key(1)).lq, d.degrade(&gt, 4, key(2)).lq);
}

#[test]
fn odd_and_tiny_sizes_still_give_an_image() {
    let d = default();
    for (h, w, s) in [(5, 3, 1), (9, 30, 2), (1, 1, 1), (7, 7, 4)] {
        for i in 0..6 {
            let out = d.degrade(&photo(h, w), s, key(i)).lq;
            assert_eq!((out.h, out.w), ((h / s).max(1), (w / s).max(1)));
            assert!(out.data.iter().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn usm_sharpening_is_returned_when_asked_and_sharpens_edges() {
    let raw = Raw {
        gt_usm: true,
        ..Raw::default()
    };
    let d = Degradation::new(&raw).unwrap();
    let gt = photo(64, 64);
    let usm = d.degrade(&gt, 4, key(0)).gt_usm.unwrap();
    assert_eq!(usm, usm_sharp(&gt));
    // A step edge: the sharpened side is brighter next to it, darker on the other.
    let mut step = Planes::zeros(3, 40, 40);
    for p in 0..3 {
        for y in 0..40 {
            for x in 20..40 {
                step.data[p * 1600 + y * 40 + x] = 0.8;
            }
            for x in 0..20 {
                step.data[p * 1600 + y * 40 + x] = 0.2;
            }
        }
    }
    let s = usm_sharp(&step);
    assert!(s.data[20 * 40 + 21] > 0.8 && s.data[20 * 40 + 18] < 0.2);
}

#[test]
fn draws_follow_the_options() {
    let d = default();
    let n = 4000;
    let draws: Vec<Draws> = (0..n).map(|i| d.draw(key(i))).collect();
    let frac = |f: &dyn Fn(&Draws) -> bool| draws.iter().filter(|x| f(x)).count() as f64 / n as f64;
    assert!((frac(&|x| x.kernel1.sinc) - 0.1).abs() < 0.02);
    assert!((frac(&|x| x.final_sinc.is_some()) - 0.8).abs() < 0.03);
    assert!((frac(&|x| x.second_blur) - 0.8).abs() < 0.03);
    assert!((frac(&|x| x.resize1.updown == UpDown::Down) - 0.7).abs() < 0.03);
    assert!((frac(&|x| x.resize_first) - 0.5).abs() < 0.03);
    assert!((frac(&|x| x.noise1.gaussian) - 0.5).abs() < 0.03);
    assert!((frac(&|x| x.kernel1.kind == Some(KernelKind::Iso)) - 0.9 * 0.45).abs() < 0.03);
    for x in &draws {
        assert!((7..=21).contains(&x.kernel1.size) && x.kernel1.size % 2 == 1);
        assert!((30.0..=95.0).contains(&x.jpeg1));
        match x.resize1.updown {
            UpDown::Up => assert!((1.0..=1.5).contains(&x.resize1.scale)),
            UpDown::Down => assert!((0.15..=1.0).contains(&x.resize1.scale)),
            UpDown::Keep => assert_eq!(x.resize1.scale, 1.0),
        }
        if let Some(KernelKind::PlateauIso | KernelKind::PlateauAniso) = x.kernel1.kind {
            assert!((1.0..=2.0).contains(&x.kernel1.beta));
        }
        if x.kernel1.sinc && x.kernel1.size < 13 {
            assert!(x.kernel1.omega >= std::f64::consts::PI / 3.0);
        }
    }
}

#[test]
fn bad_options_are_named() {
    let bad = |raw: Raw, name: &str| {
        let e = Degradation::new(&raw).unwrap_err().to_string();
        assert!(e.contains(&format!("`{name}`")), "{name}: {e}");
    };
    bad(
        Raw {
            blur_kernel_size: 20,
            ..Raw::default()
        },
        "blur_kernel_size",
    );
    bad(
        Raw {
            blur_kernel_size2: 1,
            ..Raw::default()
        },
        "blur_kernel_size2",
    );
    bad(
        Raw {
            kernel_prob: vec![0.5, 0.2, 0.1, 0.1, 0.05, 0.0],
            ..Raw::default()
        },
        "kernel_prob",
    );
    bad(
        Raw {
            kernel_prob2: vec![0.5, 0.5],
            ..Raw::default()
        },
        "kernel_prob2",
    );
    bad(
        Raw {
            kernel_list: vec!["box".into()],
            kernel_prob: vec![1.0],
            ..Raw::default()
        },
        "kernel_list",
    );
    bad(
        Raw {
            resize_prob: vec![0.5, 0.6, 0.1],
            ..Raw::default()
        },
        "resize_prob",
    );
    bad(
        Raw {
            noise_range: vec![30.0, 1.0],
            ..Raw::default()
        },
        "noise_range",
    );
    bad(
        Raw {
            jpeg_range2: vec![30.0],
            ..Raw::default()
        },
        "jpeg_range2",
    );
    bad(
        Raw {
            jpeg_range: vec![0.0, 95.0],
            ..Raw::default()
        },
        "jpeg_range",
    );
    bad(
        Raw {
            sinc_prob: 1.5,
            ..Raw::default()
        },
        "sinc_prob",
    );
    bad(
        Raw {
            resize_range: vec![0.15, 100.0],
            ..Raw::default()
        },
        "resize_range",
    );
    bad(
        Raw {
            betap_range: vec![1.5, 2.0],
            ..Raw::default()
        },
        "betap_range",
    );
    bad(
        Raw {
            blur_sigma: vec![0.0, 3.0],
            ..Raw::default()
        },
        "blur_sigma",
    );
}

#[test]
fn a_sinc_kernel_of_a_small_size_is_used_at_that_size() {
    let k = KernelDraw::sinc(7, 2.0);
    assert_eq!(k.kernel().len(), 49);
    let mut img = photo(30, 30);
    let before = img.clone();
    filter(&mut img, &k.kernel(), 7);
    assert_ne!(img, before);
}

#[test]
fn values_outside_0_1_and_nan_do_not_panic() {
    let d = default();
    let mut gt = photo(40, 40);
    gt.data[5] = f32::NAN;
    gt.data[100] = f32::INFINITY;
    gt.data[200] = -3.0;
    gt.data[300] = 7.0;
    for i in 0..16 {
        let out = d.degrade(&gt, 2, key(i)).lq;
        assert_eq!((out.h, out.w), (20, 20));
    }
}
