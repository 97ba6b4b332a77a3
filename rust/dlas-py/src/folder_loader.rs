//! `ImageFolderLoader`: ImageFolderDataset's batches, loaded in one native call with
//! the GIL released.

use std::ffi::OsString;

use dlas_core::corrupt::Key;
use dlas_core::image::DecodeOptions;
use dlas_core::load::folder::{load_item, next_frame, AltSource, FolderItem, FolderOptions};
use dlas_core::load::{pool, stack, stack_into, Corruption, Images, Loaded, Outs, Wanted};
use numpy::{PyArray1, PyArray2, PyArray4, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::corrupt::PyCorruptor;
use crate::errors::{to_pyerr, with_path, MixedSizesError};
use crate::folder::PyImageFolderList;
use crate::index::item_index;

/// Which alt image an ImageFolderDataset loads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AltMode {
    None,
    NextFrame,
    Tile,
}

/// An ImageFolderDataset's loading options (docs/spec.md §5), bound to its file list.
///
/// Args:
///     files: the dataset's ImageFolderList.
///     target_size, multiple, scale: the shape options (`force_multiple`, `scale`).
///     center_crop: `center_crop_hq_sz` or None.
///     flip: random horizontal flips (not `disable_flip`).
///     force_square, color_jitter: `force_square`, `all_image_color_jitter`.
///     alt: "none", "next_frame" (`fetch_alt_image`) or "tile" (`fetch_alt_tiled_image`).
///     skip_lq: `skip_lq`.
///     before_downsize, before_factor: `corrupt_before_downsize` and
///         `corrupt_before_downsize_factor` (1 when not set).
///     affine: None, or `(a, b)` per channel: every output image becomes `v * a + b`
///         (`normalize` and `rgb_n1_to_1`).
#[pyclass(frozen, module = "dlas_fast._native", name = "ImageFolderLoader")]
pub struct PyImageFolderLoader {
    files: Py<PyImageFolderList>,
    opts: FolderOptions,
    alt: AltMode,
    wanted: Wanted,
    before_downsize: bool,
    before_factor: usize,
}

/// Caller-made outputs: hq, lq, alt_hq, alt_lq (float32, N x 3 x H x W; None for the
/// ones not output), entropy (float32, N x E, or None), and whether they hold zeros.
type FolderOut<'py> = (
    Bound<'py, PyArray4<f32>>,
    Option<Bound<'py, PyArray4<f32>>>,
    Option<Bound<'py, PyArray4<f32>>>,
    Option<Bound<'py, PyArray4<f32>>>,
    Option<Bound<'py, PyArray2<f32>>>,
    bool,
);

/// hq, lq, alt_hq, alt_lq, has_alt, corruption_entropy, paths.
type FolderBatch<'py> = (
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Bound<'py, PyArray1<bool>>,
    Option<Bound<'py, PyAny>>,
    Vec<OsString>,
);

#[pymethods]
impl PyImageFolderLoader {
    #[new]
    #[pyo3(signature = (files, target_size, multiple, scale, center_crop, flip, force_square,
                        color_jitter, alt, skip_lq, before_downsize, before_factor,
                        affine = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        files: Py<PyImageFolderList>,
        target_size: Option<usize>,
        multiple: usize,
        scale: usize,
        center_crop: Option<usize>,
        flip: bool,
        force_square: bool,
        color_jitter: f64,
        alt: &str,
        skip_lq: bool,
        before_downsize: bool,
        before_factor: usize,
        affine: Option<[(f32, f32); 3]>,
    ) -> PyResult<Self> {
        let shape = crate::load::shape_of(target_size, multiple, scale, false)?;
        let alt = match alt {
            "none" => AltMode::None,
            "next_frame" => AltMode::NextFrame,
            "tile" => AltMode::Tile,
            other => {
                return Err(PyValueError::new_err(format!(
                    "alt must be 'none', 'next_frame' or 'tile', not {other:?}"
                )))
            }
        };
        if center_crop == Some(0) {
            return Err(PyValueError::new_err(
                "center_crop_hq_sz: must be at least 1",
            ));
        }
        if !(color_jitter.is_finite() && color_jitter >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "all_image_color_jitter: must be a number >= 0, got {color_jitter}"
            )));
        }
        if before_factor == 0 || !scale.is_multiple_of(before_factor) {
            return Err(PyValueError::new_err(format!(
                "corrupt_before_downsize_factor: must divide scale ({scale}), got {before_factor}"
            )));
        }
        Ok(PyImageFolderLoader {
            files,
            opts: FolderOptions {
                center_crop,
                flip,
                force_square,
                color_jitter,
                shape,
            },
            alt,
            wanted: Wanted {
                lq: !skip_lq,
                // DLAS corrupts the next frame with the item, but not the alt tile.
                alt_lq: alt == AltMode::NextFrame,
                affine,
            },
            before_downsize,
            before_factor,
        })
    }

    /// Loads items `indices` as one batch on `threads` threads, their corruptions and
    /// draws keyed by `corruptor` (`(seed, epoch, index)`).
    ///
    /// Returns:
    ///     (hq, lq, alt_hq, alt_lq, has_alt, corruption_entropy, paths): float32 arrays
    ///     (N, 3, H, W) / (N, 3, h, w) (None when not output), has_alt (N,) bool,
    ///     entropy (N, E) float32 (None with skip_lq), and each item's path. Raises
    ///     MixedSizesError when the items come out different sizes. `out`: arrays to
    ///     fill and return instead (see FolderOut).
    #[pyo3(signature = (indices, corruptor, epoch, threads = 1, out = None))]
    fn load<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<isize>,
        corruptor: PyRef<'py, PyCorruptor>,
        epoch: u64,
        threads: usize,
        out: Option<FolderOut<'py>>,
    ) -> PyResult<FolderBatch<'py>> {
        if indices.is_empty() {
            return Err(PyValueError::new_err("no items to load"));
        }
        dlas_core::load::check_batch_len(indices.len()).map_err(to_pyerr)?;
        let files = self.files.get();
        let mut specs = Vec::with_capacity(indices.len());
        let mut keys = Vec::with_capacity(indices.len());
        for &i in &indices {
            let index = item_index(i, files.len)?;
            let (root, file) = files.at(index)?;
            let path = files.roots[root].path(file);
            let augment = corruptor.augment_key(epoch, index as u64);
            let alt = match self.alt {
                AltMode::None => AltSource::None,
                AltMode::NextFrame => AltSource::NextFrame(next_frame(&path)),
                AltMode::Tile => {
                    let pick = Key {
                        nonce: augment.nonce ^ (1 << 60),
                        ..augment
                    };
                    AltSource::Tile(files.other_tile(root, file, pick))
                }
            };
            specs.push(FolderItem { path, alt, augment });
            keys.push(corruptor.key(epoch, index as u64));
        }
        let opts = self.opts;
        let decode = DecodeOptions::default();
        let loaded: Vec<(Loaded, bool)> = py
            .detach(|| -> dlas_core::Result<Vec<(Loaded, bool)>> {
                if threads <= 1 || specs.len() <= 1 {
                    return specs.iter().map(|s| load_item(s, &opts, &decode)).collect();
                }
                use rayon::prelude::*;
                pool::run(threads, || {
                    specs
                        .par_iter()
                        .with_min_len(specs.len().div_ceil(threads))
                        .map(|s| load_item(s, &opts, &decode))
                        .collect()
                })
            })
            .map_err(to_pyerr)?;
        let mut items = Vec::with_capacity(loaded.len());
        let mut has_alt = Vec::with_capacity(loaded.len());
        for ((mut item, alt), key) in loaded.into_iter().zip(keys) {
            item.key = key;
            items.push(item);
            has_alt.push(alt);
        }
        let g = items[0].geo;
        if let Some(i) = items
            .iter()
            .position(|l| (l.geo.hq, l.geo.lq) != (g.hq, g.lq))
        {
            let err = MixedSizesError::new_err(format!(
                "{}: comes out {:?}, the batch's first item {:?}; set target_size to batch \
                 images of different sizes",
                specs[i].path.display(),
                items[i].geo.hq,
                g.hq
            ));
            return Err(with_path(err, &specs[i].path));
        }
        let corruption = Some(Corruption {
            before_factor: self.before_factor,
            entropy: true,
            ..Corruption::single(&corruptor.inner, self.before_downsize)
        });
        let layout = dlas_core::load::Layout::of(&items, corruption.as_ref(), self.wanted);
        let n = items.len();
        let paths = specs.into_iter().map(|s| s.path.into_os_string()).collect();
        let has_alt = PyArray1::from_vec(py, has_alt);
        let shapes = Images {
            hq: (3, g.hq),
            hq_ref: (0, (0, 0)),
            lq: (3, g.lq),
            lq_ref: (0, (0, 0)),
            alt_hq: (3, g.hq),
            alt_lq: (3, g.lq),
        };
        let entropy_wanted = self.wanted.lq;
        if let Some((hq, lq, alt_hq, alt_lq, entropy, zeroed)) = out {
            let given = Images {
                hq: Some(&hq),
                hq_ref: None,
                lq: lq.as_ref(),
                lq_ref: None,
                alt_hq: alt_hq.as_ref(),
                alt_lq: alt_lq.as_ref(),
            };
            let checks = given.zip(shapes).zip(layout.per_item).named();
            for (name, ((arr, (c, (h, w))), per_item)) in checks {
                let want = per_item > 0;
                match arr {
                    Some(a) if want && a.shape() == [n, c, h, w] => {}
                    None if !want => {}
                    _ => {
                        return Err(MixedSizesError::new_err(format!(
                            "the {name} output array does not fit items of {:?}; set \
                             target_size to batch images of different sizes",
                            g.hq
                        )))
                    }
                }
            }
            match &entropy {
                Some(e) if entropy_wanted && e.shape() == [n, layout.entropy] => {}
                None if !entropy_wanted => {}
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "the entropy output must be N x {}",
                        layout.entropy
                    )))
                }
            }
            let mut guards = Vec::new();
            for a in [Some(&hq), lq.as_ref(), alt_hq.as_ref(), alt_lq.as_ref()]
                .into_iter()
                .flatten()
            {
                guards.push(crate::load::writable(a)?);
            }
            let mut eguard = entropy.as_ref().map(crate::load::writable).transpose()?;
            let mut slices: Vec<&mut [f32]> = Vec::new();
            for g in guards.iter_mut() {
                slices.push(g.as_slice_mut()?);
            }
            let mut it = slices.into_iter();
            let mut next_if = |on: bool| -> &mut [f32] {
                if on {
                    it.next().expect("one slice per output")
                } else {
                    &mut []
                }
            };
            let hq_s = next_if(true);
            let lq_s = next_if(lq.is_some());
            let ahq_s = next_if(alt_hq.is_some());
            let alq_s = next_if(alt_lq.is_some());
            let e_s: &mut [f32] = match eguard.as_mut() {
                Some(g) => g.as_slice_mut()?,
                None => &mut [],
            };
            let mut no_centres = (vec![0i64; 2 * n], vec![0i64; 2 * n]);
            let wanted = self.wanted;
            py.detach(|| {
                stack_into(
                    &items,
                    threads,
                    corruption,
                    wanted,
                    Outs::of_init(
                        Images {
                            hq: hq_s,
                            hq_ref: &mut [],
                            lq: lq_s,
                            lq_ref: &mut [],
                            alt_hq: ahq_s,
                            alt_lq: alq_s,
                        },
                        &mut no_centres.0,
                        &mut no_centres.1,
                        e_s,
                    ),
                    zeroed,
                )
            })
            .map_err(to_pyerr)?;
            drop((guards, eguard));
            let entropy = entropy.map(|e| e.into_any());
            return Ok((
                hq.into_any(),
                lq.map(|a| a.into_any()),
                alt_hq.map(|a| a.into_any()),
                alt_lq.map(|a| a.into_any()),
                has_alt,
                entropy,
                paths,
            ));
        }
        let wanted = self.wanted;
        let s = py
            .detach(|| stack(&items, threads, corruption, wanted))
            .map_err(to_pyerr)?;
        let arr = |data: Vec<f32>, (h, w): (usize, usize)| -> PyResult<Option<Bound<'py, PyAny>>> {
            if data.is_empty() {
                return Ok(None);
            }
            Ok(Some(
                PyArray1::from_vec(py, data)
                    .reshape([n, 3, h, w])?
                    .into_any(),
            ))
        };
        let entropy = if entropy_wanted {
            Some(
                PyArray1::from_vec(py, s.entropy)
                    .reshape([n, layout.entropy])?
                    .into_any(),
            )
        } else {
            None
        };
        Ok((
            arr(s.hq, g.hq)?.expect("hq is always output"),
            arr(s.lq, g.lq)?,
            arr(s.alt_hq, g.hq)?,
            arr(s.alt_lq, g.lq)?,
            has_alt,
            entropy,
            paths,
        ))
    }
}
