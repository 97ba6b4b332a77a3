//! Where a dataset's random draws come from: a seed, and the key of each call derived
//! from `(seed, epoch, item index)`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Key;

/// A dataset's seed and the keys derived from it.
///
/// A seeded one keys every call on `(seed, epoch, index)`: the same triple gives the
/// same draws in any process. An unseeded one (`seed` None) draws its seed from the OS
/// and adds a fresh nonce to every call, so that no two calls repeat (as DLAS, whose
/// draws come from the process's random state).
#[derive(Debug)]
pub struct Keys {
    seed: u64,
    seeded: bool,
    calls: AtomicU64,
}

impl Keys {
    pub fn new(seed: Option<u64>) -> Keys {
        Keys {
            seed: seed.unwrap_or_else(os_seed),
            seeded: seed.is_some(),
            calls: AtomicU64::new(0),
        }
    }

    /// The seed in use (drawn from the OS when none was given).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The key of the corruption of item `index` in `epoch`.
    pub fn key(&self, epoch: u64, index: u64) -> Key {
        let nonce = if self.seeded {
            0
        } else {
            // Unseeded: never repeat, even across forked workers sharing the seed.
            (self.calls.fetch_add(1, Ordering::Relaxed) + 1) ^ ((std::process::id() as u64) << 40)
        };
        Key {
            seed: self.seed,
            epoch,
            index,
            nonce,
        }
    }

    /// The key of a dataset's own augmentations of item `index` (flips, crops, jitter):
    /// a stream apart from its corruption's.
    pub fn augment_key(&self, epoch: u64, index: u64) -> Key {
        let mut key = self.key(epoch, index);
        key.nonce ^= 1 << 62;
        key
    }

    /// The key of a call not tied to an item: numbered by a per-`Keys` call counter,
    /// in a stream apart from the item-indexed calls.
    pub fn call_key(&self, epoch: u64) -> Key {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut key = self.key(epoch, call);
        key.nonce ^= 1 << 63;
        key
    }
}

fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        if f.read_exact(&mut b).is_ok() {
            return u64::from_le_bytes(b);
        }
    }
    // No /dev/urandom: the clock and the process id.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_keys_repeat_and_unseeded_ones_do_not() {
        let k = Keys::new(Some(7));
        assert_eq!(k.key(2, 5), k.key(2, 5));
        assert_eq!(k.key(2, 5).seed, 7);
        assert_ne!(k.key(2, 5), k.augment_key(2, 5));
        let u = Keys::new(None);
        assert_ne!(u.key(2, 5), u.key(2, 5));
        assert_ne!(k.call_key(0), k.call_key(0));
    }
}
