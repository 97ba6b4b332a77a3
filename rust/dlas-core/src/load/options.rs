//! A loader's options, read from any serde source (a Python dict in the bindings, JSON
//! in tests) with errors that name the option at fault, as DLAS's option files spell it.

use serde::{Deserialize, Deserializer};

use crate::error::{CoreError, Result};

/// `T` read from `source`; a wrong value is an [`CoreError::InvalidOption`] naming its
/// option (the field's path, e.g. `target_size`), an unknown or missing option one
/// naming that option.
pub fn read<'de, T, D>(source: D) -> Result<T>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    serde_path_to_error::deserialize(source).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let option = if path == "." {
            // Unknown and missing fields are reported at the top: the message names them.
            reason.split('`').nth(1).unwrap_or("options").to_string()
        } else {
            path
        };
        CoreError::option(&option, reason)
    })
}

pub(crate) fn one() -> usize {
    1
}

pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Opts {
        #[serde(default)]
        target_size: Option<usize>,
        #[serde(default = "one")]
        scale: usize,
    }

    #[test]
    fn errors_name_the_option() {
        let read_json = |s: &str| read::<Opts, _>(&mut serde_json::Deserializer::from_str(s));
        assert_eq!(read_json(r#"{"scale": 4}"#).unwrap().scale, 4);
        assert_eq!(read_json("{}").unwrap().scale, 1);
        let msg = read_json(r#"{"scale": "x"}"#).unwrap_err().to_string();
        assert!(msg.starts_with("option `scale`: invalid type"), "{msg}");
        let msg = read_json(r#"{"target_size": -3}"#).unwrap_err().to_string();
        assert!(msg.starts_with("option `target_size`:"), "{msg}");
        let msg = read_json(r#"{"scal": 2}"#).unwrap_err().to_string();
        assert!(msg.starts_with("option `scal`: unknown field"), "{msg}");
    }
}
