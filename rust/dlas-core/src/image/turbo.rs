//! The few libjpeg-turbo calls the `turbojpeg` crate does not wrap (whole-image RGB to
//! YCbCr planes, cropped decoding), on handles kept one per thread.

use std::cell::RefCell;
use std::ffi::CStr;

use turbojpeg::raw;

/// An owned TurboJPEG handle.
pub(super) struct Handle(raw::tjhandle);

impl Handle {
    fn new(kind: raw::TJINIT) -> Option<Handle> {
        // SAFETY: tj3Init has no preconditions; a null result is checked.
        let h = unsafe { raw::tj3Init(kind as _) };
        (!h.is_null()).then_some(Handle(h))
    }

    pub(super) fn ptr(&self) -> raw::tjhandle {
        self.0
    }

    /// The handle's last error message.
    pub(super) fn error(&self) -> String {
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated string
        // owned by the handle, copied out before any other call.
        unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    pub(super) fn get(&self, param: raw::TJPARAM) -> i32 {
        // SAFETY: the handle is live; unknown parameters return -1.
        unsafe { raw::tj3Get(self.0, param as _) }
    }

    pub(super) fn set(&self, param: raw::TJPARAM, value: i32) -> Result<(), String> {
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
pub(super) fn with_compressor<T>(
    f: impl FnOnce(&Handle) -> Result<T, String>,
) -> Result<T, String> {
    with(&COMPRESS, raw::TJINIT_TJINIT_COMPRESS, f)
}

/// Runs `f` with this thread's decompressor handle.
pub(super) fn with_decompressor<T>(
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
