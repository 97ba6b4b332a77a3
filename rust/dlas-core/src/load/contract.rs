//! The named contract between a loader and its caller: which outputs a batch has (by
//! the dataset's item key: `hq`, `gt_fullsize_ref`, ...), their shapes and element
//! types ([`OutputSpec`]), the caller's buffers by key ([`Given`]), and the finished
//! batch ([`Batch`]).
//!
//! A dataset family names the stack's outputs ([`OutputKeys`]); [`stack_named`] lays
//! a batch out, checks the caller's buffers against it, fills them (or new ones) and
//! returns every output under its key. Nothing crosses this boundary by position.

use std::path::PathBuf;

use super::{check_batch_len, stack, stack_into, Corruption, Geometry, Images, Layout, Loaded};
use super::{Outs, Wanted};
use crate::corrupt::{Corruptor, Keys};
use crate::error::{CoreError, Result};

/// The element type of an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I64,
    Bool,
}

impl Dtype {
    /// numpy's and torch's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::I64 => "int64",
            Dtype::Bool => "bool",
        }
    }
}

/// One output of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// The dataset's item key.
    pub key: &'static str,
    /// The batch's shape: the batch axes, then one item's.
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    /// Always zeros (e.g. the ref arrays when no item can have a ref): a caller may
    /// leave such an output out of its buffers and make it as zero pages.
    pub zeros: bool,
}

impl OutputSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A caller's buffer for one output.
pub enum OutBuf<'a> {
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
    Bool(&'a mut [bool]),
}

impl OutBuf<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            OutBuf::F32(_) => Dtype::F32,
            OutBuf::I64(_) => Dtype::I64,
            OutBuf::Bool(_) => Dtype::Bool,
        }
    }
}

/// The caller's buffers, by key, with their shapes.
#[derive(Default)]
pub struct Given<'a> {
    bufs: Vec<(String, Vec<usize>, OutBuf<'a>)>,
    /// The buffers hold zeros already (fresh shared memory): zeros are not written
    /// again.
    pub zeroed: bool,
}

impl<'a> Given<'a> {
    pub fn new(zeroed: bool) -> Self {
        Given {
            bufs: Vec::new(),
            zeroed,
        }
    }

    /// Adds the buffer of output `key`, of `shape`.
    pub fn add(&mut self, key: impl Into<String>, shape: Vec<usize>, buf: OutBuf<'a>) {
        self.bufs.push((key.into(), shape, buf));
    }

    /// The buffer given for `spec`, checked against its shape and type; None when none
    /// was given.
    pub fn take(&mut self, spec: &OutputSpec) -> Result<Option<OutBuf<'a>>> {
        let Some(at) = self.bufs.iter().position(|(k, ..)| k == spec.key) else {
            return Ok(None);
        };
        let (key, shape, buf) = self.bufs.swap_remove(at);
        if buf.dtype() != spec.dtype {
            return Err(CoreError::option(
                "out",
                format!(
                    "the {key} output array must be {}, not {}",
                    spec.dtype.name(),
                    buf.dtype().name()
                ),
            ));
        }
        if shape != spec.shape {
            return Err(CoreError::mixed_sizes(
                None,
                format!(
                    "the {key} output array has shape {shape:?}, the batch's {key} {:?}; set \
                     target_size to batch images of different sizes",
                    spec.shape
                ),
            ));
        }
        Ok(Some(buf))
    }

    /// An error naming any buffer no output took.
    pub fn finish(self) -> Result<()> {
        match self.bufs.first() {
            None => Ok(()),
            Some((key, ..)) => Err(CoreError::option(
                "out",
                format!("this batch has no output {key:?}"),
            )),
        }
    }
}

/// The values of one output of a finished batch.
#[derive(Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    /// Written into the caller's buffer.
    Given,
    /// Zeros the caller makes (an output of [`OutputSpec::zeros`] it did not give).
    Zeros,
}

/// A loaded batch: each output under its key, and the path of each loaded image.
#[derive(Debug, Default)]
pub struct Batch {
    pub outputs: Vec<(OutputSpec, Data)>,
    pub paths: Vec<PathBuf>,
}

/// How a batch's random draws are made and keyed: the corruptor, its keys, the epoch.
#[derive(Clone, Copy)]
pub struct Draws<'a> {
    pub corruptor: &'a Corruptor,
    pub keys: &'a Keys,
    pub epoch: u64,
}

/// The keys a dataset family gives the stack's outputs (None: not an output of it).
#[derive(Clone, Copy, Debug)]
pub struct OutputKeys {
    pub images: Images<Option<&'static str>>,
    pub hq_centres: Option<&'static str>,
    pub lq_centres: Option<&'static str>,
    pub entropy: Option<&'static str>,
}

/// The outputs of a batch laid out as `layout` for items of geometry `g`, with batch
/// axes `lead` (`[n]`, or `[n, frames]` when items are groups): every laid-out image
/// output, the ref outputs as zeros when no item has a ref, the centres, and the
/// entropy (per corruption group) when `entropy` is wanted.
pub fn specs(
    keys: &OutputKeys,
    layout: &Layout,
    g: &Geometry,
    lead: &[usize],
    entropy: bool,
) -> Vec<OutputSpec> {
    let shape = |item: &[usize]| lead.iter().chain(item).copied().collect::<Vec<_>>();
    let mut out = Vec::new();
    let images = keys.images.zip(layout.per_item).zip(Images::shapes(g));
    let refs = Images {
        hq_ref: true,
        lq_ref: true,
        ..Images::default()
    };
    for (((key, per_item), (c, (h, w))), is_ref) in images.zip(refs).into_array() {
        let Some(key) = key else { continue };
        let zeros = is_ref && layout.zero_refs;
        if per_item > 0 || zeros {
            out.push(OutputSpec {
                key,
                shape: shape(&[c, h, w]),
                dtype: Dtype::F32,
                zeros,
            });
        }
    }
    for key in [keys.hq_centres, keys.lq_centres].into_iter().flatten() {
        out.push(OutputSpec {
            key,
            shape: shape(&[2]),
            dtype: Dtype::I64,
            zeros: false,
        });
    }
    if let (Some(key), true) = (keys.entropy, entropy) {
        let groups = lead.iter().product::<usize>() / layout.group;
        out.push(OutputSpec {
            key,
            shape: vec![groups, layout.entropy],
            dtype: Dtype::F32,
            zeros: false,
        });
    }
    out
}

/// An error naming the first item of `items` whose sizes differ from the first's
/// (`paths[i]` is item `i`'s file).
pub fn check_one_size(items: &[Loaded], paths: &[PathBuf]) -> Result<()> {
    let g = items[0].geo;
    match items
        .iter()
        .position(|l| (l.geo.hq, l.geo.lq) != (g.hq, g.lq))
    {
        None => Ok(()),
        Some(i) => Err(CoreError::mixed_sizes(
            Some(paths[i].clone()),
            format!(
                "comes out {:?}, the batch's first item {:?}; set target_size to batch \
                 images of different sizes",
                items[i].geo.hq, g.hq
            ),
        )),
    }
}

/// Stacks `items` (of one geometry) into the outputs `keys` names, with batch axes
/// `lead` (their product is `items.len()`): into `given`'s buffers when there are
/// some (every output must be given, except zeros), else into new ones.
pub fn stack_named(
    items: &[Loaded],
    threads: usize,
    corruption: Option<Corruption<'_>>,
    wanted: Wanted,
    keys: &OutputKeys,
    lead: &[usize],
    given: Option<Given<'_>>,
) -> Result<Vec<(OutputSpec, Data)>> {
    let n = items.len();
    assert_eq!(
        lead.iter().product::<usize>(),
        n,
        "the batch axes hold every item"
    );
    check_batch_len(n)?;
    let layout = Layout::of(items, corruption.as_ref(), wanted);
    let specs = specs(keys, &layout, &items[0].geo, lead, wanted.lq);
    let Some(mut given) = given else {
        let s = stack(items, threads, corruption, wanted)?;
        let mut images = s.images.zip(keys.images).into_array().into_iter();
        let mut centres = [
            (keys.hq_centres, s.hq_centres),
            (keys.lq_centres, s.lq_centres),
        ]
        .into_iter();
        let mut entropy = Some(s.entropy);
        let data = specs.into_iter().map(|spec| {
            let data = if spec.zeros {
                Data::Zeros
            } else if spec.dtype == Dtype::I64 {
                let (_, v) = centres
                    .find(|(k, _)| *k == Some(spec.key))
                    .expect("a centre output");
                Data::I64(v)
            } else if Some(spec.key) == keys.entropy {
                Data::F32(entropy.take().expect("one entropy output"))
            } else {
                let (v, _) = images
                    .find(|(_, k)| *k == Some(spec.key))
                    .expect("an image output");
                Data::F32(v)
            };
            (spec, data)
        });
        return Ok(data.collect());
    };
    // The caller's buffers, by key.
    let mut bufs: Images<Option<&mut [f32]>> = Images::default();
    let (mut hq_centres, mut lq_centres, mut entropy) = (None, None, None);
    let mut data = Vec::with_capacity(specs.len());
    for spec in specs {
        let buf = given.take(&spec)?;
        let key = Some(spec.key);
        match buf {
            None if spec.zeros => {
                data.push((spec, Data::Zeros));
                continue;
            }
            None => {
                return Err(CoreError::option(
                    "out",
                    format!(
                        "no output array given for {} (only outputs of zeros, such as the \
                         ref output arrays of items without refs, may be left out)",
                        spec.key
                    ),
                ))
            }
            Some(OutBuf::I64(b)) if key == keys.hq_centres => hq_centres = Some(b),
            Some(OutBuf::I64(b)) => lq_centres = Some(b),
            Some(OutBuf::F32(b)) if key == keys.entropy => entropy = Some(b),
            Some(OutBuf::F32(b)) => {
                for (slot, k) in bufs.as_mut().zip(keys.images).into_array() {
                    if k == key {
                        *slot = Some(b);
                        break;
                    }
                }
            }
            Some(OutBuf::Bool(_)) => unreachable!("checked against the spec's type"),
        }
        data.push((spec, Data::Given));
    }
    let zeroed = given.zeroed;
    given.finish()?;
    if bufs.hq_ref.is_some() != bufs.lq_ref.is_some() {
        return Err(CoreError::option(
            "out",
            "give both ref output arrays, or neither",
        ));
    }
    // Centres a family does not output are still written: into scratch.
    let mut scratch = (vec![0i64; 2 * n], vec![0i64; 2 * n]);
    let outs = Outs::of_init(
        bufs.map(|b| b.unwrap_or_default()),
        hq_centres.unwrap_or(&mut scratch.0),
        lq_centres.unwrap_or(&mut scratch.1),
        entropy.unwrap_or_default(),
    );
    stack_into(items, threads, corruption, wanted, outs, zeroed)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::image::Rgb8;
    use crate::load::single::{SingleLoader, SingleOptions, KEYS};
    use crate::load::{PreparedMask, PreparedRef, Shape};

    fn image(w: usize, h: usize, seed: usize) -> Rgb8 {
        let data = (0..w * h * 3)
            .map(|i| ((i * 2_654_435_761usize + seed * 977) >> 7) as u8)
            .collect();
        Rgb8::new(w, h, data)
    }

    /// `n` items of 32 x 48 (scale 2), with a ref each when `refs`.
    fn items(n: usize, refs: bool) -> Vec<Loaded> {
        let shape = Shape {
            target_size: None,
            multiple: 1,
            scale: 2,
            eval: false,
        };
        let geo = Geometry::new((32, 48), &shape);
        let reference = Arc::new(PreparedRef::new(&image(48, 32, 99), &geo));
        (0..n)
            .map(|i| Loaded {
                reference: refs.then(|| {
                    let mask = PreparedMask::new(&geo, (10, 20 + i as i64), 16);
                    (reference.clone(), Arc::new(mask))
                }),
                ..Loaded::new(geo, image(48, 32, i))
            })
            .collect()
    }

    fn options(json: &str) -> crate::Result<SingleOptions> {
        crate::load::options::read(&mut serde_json::Deserializer::from_str(json))
    }

    #[test]
    fn single_options_are_read_and_checked_by_name() {
        let msg = |json: &str| match options(json).and_then(SingleLoader::new) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert_eq!(msg(r#"{"target_size": 64, "scale": 2}"#), "");
        assert!(msg(r#"{"scale": 0}"#).starts_with("option `scale`"));
        assert!(
            msg(r#"{"target_size": 30, "force_multiple": 4, "scale": 2}"#)
                .starts_with("option `target_size`")
        );
        assert!(msg(r#"{"scale": true}"#).starts_with("option `scale`: invalid type"));
        assert!(msg(r#"{"num_frames": 0}"#).starts_with("option `num_frames`"));
        assert!(msg(r#"{"sclae": 2}"#).starts_with("option `sclae`: unknown field"));
    }

    #[test]
    fn outputs_are_named_and_shaped_before_loading() {
        let loader = |json: &str| SingleLoader::new(options(json).unwrap()).unwrap();
        assert!(loader(r#"{"scale": 2}"#).outputs(4).is_none());
        let specs = loader(r#"{"target_size": 64, "scale": 2}"#)
            .outputs(4)
            .unwrap();
        let keys: Vec<_> = specs.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "hq",
                "gt_fullsize_ref",
                "lq",
                "lq_fullsize_ref",
                "gt_center",
                "lq_center"
            ]
        );
        assert_eq!(specs[1].shape, [4, 4, 64, 64]);
        assert!(specs[1].zeros && specs[3].zeros && !specs[0].zeros);
        assert_eq!(
            (specs[4].shape.clone(), specs[4].dtype),
            (vec![4, 2], Dtype::I64)
        );
        let frames =
            loader(r#"{"target_size": 64, "scale": 2, "need_ref": true, "num_frames": 3}"#)
                .outputs(4)
                .unwrap();
        assert_eq!(frames[2].shape, [4, 3, 3, 32, 32]);
        assert!(frames.iter().all(|s| !s.zeros));
    }

    /// A batch stacked into new buffers and into the caller's (not zeroed) holds the
    /// same values under the same keys; the refs of ref-less items are zeros either way.
    #[test]
    fn given_buffers_get_the_values_of_new_ones() {
        for refs in [false, true] {
            let items = items(3, refs);
            let fresh = stack_named(&items, 2, None, Wanted::default(), &KEYS, &[3], None).unwrap();
            let mut bufs: Vec<(OutputSpec, Vec<f32>, Vec<i64>)> = fresh
                .iter()
                .filter(|(s, _)| !s.zeros)
                .map(|(s, _)| (s.clone(), vec![-3.0; s.len()], vec![-3; s.len()]))
                .collect();
            let mut given = Given::new(false);
            for (spec, f, i) in bufs.iter_mut() {
                let buf = match spec.dtype {
                    Dtype::F32 => OutBuf::F32(f),
                    _ => OutBuf::I64(i),
                };
                given.add(spec.key, spec.shape.clone(), buf);
            }
            let filled =
                stack_named(&items, 2, None, Wanted::default(), &KEYS, &[3], Some(given)).unwrap();
            for ((spec, data), (spec2, data2)) in fresh.iter().zip(&filled) {
                assert_eq!(spec, spec2);
                if spec.zeros {
                    assert!(!refs && *data == Data::Zeros && *data2 == Data::Zeros);
                    continue;
                }
                assert_eq!(*data2, Data::Given);
                let (_, f, i) = bufs.iter().find(|(s, ..)| s == spec).unwrap();
                match data {
                    Data::F32(v) => assert_eq!(v, f, "{}", spec.key),
                    Data::I64(v) => assert_eq!(v, i, "{}", spec.key),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn given_buffers_are_checked_by_key() {
        let items = items(2, true);
        fn run(items: &[Loaded], given: Given<'_>) -> Result<Vec<(OutputSpec, Data)>> {
            stack_named(items, 1, None, Wanted::default(), &KEYS, &[2], Some(given))
        }
        let stack = |given: Given<'_>| run(&items, given);
        let mut hq = vec![0f32; 2 * 3 * 32 * 48];
        // Every other output missing: the first one is named.
        let mut given = Given::new(true);
        given.add("hq", vec![2, 3, 32, 48], OutBuf::F32(&mut hq));
        let msg = stack(given).unwrap_err().to_string();
        assert!(
            msg.contains("no output array given for gt_fullsize_ref"),
            "{msg}"
        );
        // A shape the items do not have: mixed sizes (loaded one by one, they are fine).
        let mut given = Given::new(true);
        given.add("hq", vec![2, 3, 48, 32], OutBuf::F32(&mut hq));
        assert!(matches!(stack(given), Err(CoreError::MixedSizes { .. })));
        // The wrong element type, and a key no output has.
        let mut centres = vec![0i64; 2 * 3 * 32 * 48];
        let mut given = Given::new(true);
        given.add("hq", vec![2, 3, 32, 48], OutBuf::I64(&mut centres));
        assert!(stack(given)
            .unwrap_err()
            .to_string()
            .contains("must be float32"));
        let mut other = vec![0f32; 4];
        let mut given = Given::new(true);
        given.add("alt_hq", vec![4], OutBuf::F32(&mut other));
        let err = stack_named(&items, 1, None, Wanted::default(), &KEYS, &[2], Some(given));
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("no output array given for hq"), "{msg}");
    }

    #[test]
    fn items_of_another_size_name_their_file() {
        let mut items = items(2, false);
        let shape = Shape {
            target_size: None,
            multiple: 1,
            scale: 2,
            eval: false,
        };
        items[1].geo = Geometry::new((16, 16), &shape);
        let paths = [PathBuf::from("a.jpg"), PathBuf::from("b.jpg")];
        let err = check_one_size(&items, &paths).unwrap_err();
        assert_eq!(err.path(), Some(std::path::Path::new("b.jpg")));
        assert!(matches!(err, CoreError::MixedSizes { .. }));
    }
}
