//! The few libjpeg-turbo calls the `turbojpeg` crate does not wrap (whole-image RGB to
//! YCbCr planes, cropped decoding), on handles kept one per thread.

use std::cell::RefCell;
use std::ffi::CStr;

use turbojpeg::raw;

/// An owned TurboJPEG handle.
pub(crate) struct Handle(raw::tjhandle);

impl Handle {
    fn new(kind: raw::TJINIT) -> Option<Handle> {
        // SAFETY: tj3Init has no preconditions; a null result is checked.
        let h = unsafe { raw::tj3Init(kind as _) };
        (!h.is_null()).then_some(Handle(h))
    }

    pub(crate) fn ptr(&self) -> raw::tjhandle {
        self.0
    }

    /// The handle's last error message.
    pub(crate) fn error(&self) -> String {
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated string
        // owned by the handle, copied out before any other call.
        unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Whether the last call failed with nothing but a warning about the file's
    /// markers, after which every pixel is decoded from complete data, as OpenCV
    /// decodes it too: stray bytes between markers, an unknown JFIF revision, unusual
    /// SOS parameters, a bad ICC or thumbnail segment. Warnings that data is missing or
    /// damaged (a file cut short, a bad Huffman or arithmetic code, a lost restart
    /// marker, an inconsistent progression) are not: libjpeg-turbo fills what it could
    /// not decode with grey, so those files are errors.
    pub(crate) fn only_benign_warning(&self) -> bool {
        // SAFETY: the handle is live.
        let code = unsafe { raw::tj3GetErrorCode(self.0) };
        code == raw::TJERR_TJERR_WARNING as i32 && is_benign_warning(&self.error())
    }

    pub(crate) fn get(&self, param: raw::TJPARAM) -> i32 {
        // SAFETY: the handle is live; unknown parameters return -1.
        unsafe { raw::tj3Get(self.0, param as _) }
    }

    pub(crate) fn set(&self, param: raw::TJPARAM, value: i32) -> Result<(), String> {
        // SAFETY: the handle is live.
        match unsafe { raw::tj3Set(self.0, param as _, value) } {
            0 => Ok(()),
            _ => Err(self.error()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) };
    }
}

thread_local! {
    static COMPRESS: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static DECOMPRESS: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's compressor handle.
pub(crate) fn with_compressor<T>(
    f: impl FnOnce(&Handle) -> Result<T, String>,
) -> Result<T, String> {
    with(&COMPRESS, raw::TJINIT_TJINIT_COMPRESS, f)
}

/// Runs `f` with this thread's decompressor handle.
pub(crate) fn with_decompressor<T>(
    f: impl FnOnce(&Handle) -> Result<T, String>,
) -> Result<T, String> {
    with(&DECOMPRESS, raw::TJINIT_TJINIT_DECOMPRESS, f)
}

fn with<T>(
    slot: &'static std::thread::LocalKey<RefCell<Option<Handle>>>,
    kind: raw::TJINIT,
    f: impl FnOnce(&Handle) -> Result<T, String>,
) -> Result<T, String> {
    slot.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Handle::new(kind).ok_or("libjpeg-turbo: tj3Init failed")?);
        }
        f(slot.as_ref().expect("handle just created"))
    })
}

/// libjpeg-turbo's warnings (jerror.h) about markers only: see
/// [`Handle::only_benign_warning`].
fn is_benign_warning(message: &str) -> bool {
    const BENIGN: [&str; 5] = [
        "extraneous bytes before marker",
        "unknown JFIF revision number",
        "Invalid SOS parameters for sequential JPEG",
        "bad ICC marker",
        "thumbnail image size does not match data length",
    ];
    BENIGN.iter().any(|w| message.contains(w))
}

#[cfg(test)]
mod tests {
    use super::is_benign_warning;

    #[test]
    fn only_marker_warnings_are_benign() {
        for m in [
            "Corrupt JPEG data: 2 extraneous bytes before marker 0xdb",
            "Warning: unknown JFIF revision number 3.01",
        ] {
            assert!(is_benign_warning(m), "{m}");
        }
        for m in [
            "Premature end of JPEG file",
            "Corrupt JPEG data: premature end of data segment",
            "Corrupt JPEG data: bad Huffman code",
            "Corrupt JPEG data: bad arithmetic code",
            "Corrupt JPEG data: found marker 0xd9 instead of RST3",
            "Inconsistent progression sequence for component 0 coefficient 1",
        ] {
            assert!(!is_benign_warning(m), "{m}");
        }
    }
}
