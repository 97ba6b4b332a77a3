use std::sync::Arc;

use super::*;
use crate::load::Shape;

fn image(w: usize, h: usize, seed: usize) -> Rgb8 {
    let data = (0..w * h * 3)
        .map(|i| ((i * 2_654_435_761usize + seed * 977) >> 7) as u8)
        .collect();
    Rgb8::new(w, h, data)
}

fn geometry() -> Geometry {
    let shape = Shape {
        target_size: None,
        multiple: 1,
        scale: 2,
        eval: false,
    };
    Geometry::new((32, 48), &shape)
}

/// `n` items of one geometry; every other one has a ref when `refs`, every one an alt
/// image when `alts`.
fn items(n: usize, refs: bool, alts: bool) -> Vec<Loaded> {
    let geo = geometry();
    let reference = Arc::new(PreparedRef::new(&image(48, 32, 99), &geo));
    (0..n)
        .map(|i| Loaded {
            alt: alts.then(|| Pixels::Bytes(image(48, 32, 1000 + i))),
            reference: (refs && i % 2 == 0).then(|| {
                let mask = PreparedMask::new(&geo, (10 + i as i64, 20), 16);
                (reference.clone(), Arc::new(mask))
            }),
            ..Loaded::new(geo, image(48, 32, i))
        })
        .collect()
}

#[test]
fn outputs_keep_their_names_and_order() {
    let sizes = Images {
        hq: 1,
        hq_ref: 2,
        lq: 3,
        lq_ref: 4,
        alt_hq: 5,
        alt_lq: 6,
        hq_usm: 7,
    };
    let named = sizes.map(|v| v * 10).named();
    let names: Vec<_> = named.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["hq", "hq_ref", "lq", "lq_ref", "alt_hq", "alt_lq", "hq_usm"]
    );
    assert_eq!(named.map(|(_, v)| v), [10, 20, 30, 40, 50, 60, 70]);
    let pairs = sizes.zip(sizes.map(|v| v + 1));
    assert_eq!((pairs.lq, pairs.alt_lq), ((3, 4), (6, 7)));
    let mut order = Vec::new();
    sizes.map(|v| order.push(v));
    assert_eq!(
        order,
        [1, 2, 3, 4, 5, 6, 7],
        "map visits the fields in order"
    );
}

#[test]
fn the_layout_names_what_each_item_holds() {
    let (hn, ln) = (32 * 48, 16 * 24);
    let plain = Layout::of(&items(2, false, false), None, Wanted::default());
    assert!(plain.zero_refs);
    assert_eq!(
        plain.per_item,
        Images {
            hq: 3 * hn,
            lq: 3 * ln,
            ..Images::default()
        }
    );
    let full = Layout::of(&items(2, true, true), None, Wanted::default());
    assert_eq!(
        full.per_item,
        Images {
            hq: 3 * hn,
            hq_ref: 4 * hn,
            lq: 3 * ln,
            lq_ref: 4 * ln,
            alt_hq: 3 * hn,
            alt_lq: 3 * ln,
            hq_usm: 0,
        }
    );
    let no_lq = Wanted {
        lq: false,
        ..Wanted::default()
    };
    let hq_only = Layout::of(&items(2, false, true), None, no_lq).per_item;
    assert_eq!((hq_only.lq, hq_only.alt_lq, hq_only.alt_hq), (0, 0, 3 * hn));
}

/// The same batch stacked on one thread, on three (each filling its share of every
/// output), and into caller buffers: the same values in every named output.
#[test]
fn every_way_of_stacking_writes_the_same_outputs() {
    for (refs, alts) in [(false, false), (true, false), (true, true)] {
        let batch = items(5, refs, alts);
        let one = stack(&batch, 1, None, Wanted::default()).unwrap();
        let three = stack(&batch, 3, None, Wanted::default()).unwrap();
        let what = format!("refs {refs}, alts {alts}");
        for (a, b) in [
            (&one.images.hq, &three.images.hq),
            (&one.images.hq_ref, &three.images.hq_ref),
            (&one.images.lq, &three.images.lq),
            (&one.images.lq_ref, &three.images.lq_ref),
            (&one.images.alt_hq, &three.images.alt_hq),
            (&one.images.alt_lq, &three.images.alt_lq),
        ] {
            assert!(a == b, "{what}");
        }
        assert_eq!(one.hq_centres, three.hq_centres, "{what}");
        assert!(
            !one.images.hq.is_empty() && one.images.alt_hq.is_empty() != alts,
            "{what}"
        );
        assert_eq!(one.images.hq_ref.is_empty(), !refs, "{what}");

        // Into caller buffers that hold garbage: every value is written.
        let layout = Layout::of(&batch, None, Wanted::default());
        let n = batch.len();
        let mut bufs = layout.per_item.map(|k| vec![f32::NAN; n * k]);
        let (mut hc, mut lc) = (vec![-7i64; 2 * n], vec![-7i64; 2 * n]);
        let outs = Outs::of_init(
            bufs.as_mut().map(|b| b.as_mut_slice()),
            &mut hc,
            &mut lc,
            &mut [],
        );
        stack_into(&batch, 2, None, Wanted::default(), outs, false).unwrap();
        assert!(
            bufs.hq == one.images.hq && bufs.lq == one.images.lq,
            "{what}"
        );
        assert!(
            bufs.hq_ref == one.images.hq_ref && bufs.lq_ref == one.images.lq_ref,
            "{what}"
        );
        assert!(
            bufs.alt_hq == one.images.alt_hq && bufs.alt_lq == one.images.alt_lq,
            "{what}"
        );
        assert_eq!((hc, lc), (one.hq_centres, one.lq_centres), "{what}");
    }
}

#[test]
#[should_panic(expected = "size of the lq output")]
fn a_buffer_of_the_wrong_size_is_refused_by_name() {
    let batch = items(2, false, false);
    let layout = Layout::of(&batch, None, Wanted::default());
    let mut bufs = layout.per_item.map(|k| vec![0f32; 2 * k]);
    bufs.lq.pop();
    let (mut hc, mut lc) = (vec![0i64; 4], vec![0i64; 4]);
    let outs = Outs::of_init(
        bufs.as_mut().map(|b| b.as_mut_slice()),
        &mut hc,
        &mut lc,
        &mut [],
    );
    let _ = stack_into(&batch, 1, None, Wanted::default(), outs, false);
}
