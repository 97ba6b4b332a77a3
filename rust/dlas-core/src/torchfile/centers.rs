//! Conversion of a decoded pickle into the centers map `{id: ((row, col), width)}`.

use super::error::TorchFileError;
use super::value::PickleValue;
use super::CentersMap;

const SHOW: usize = 60;

fn int(v: &PickleValue) -> Option<i64> {
    match v {
        PickleValue::Int(i) => Some(*i),
        _ => None,
    }
}

/// A tuple or list of exactly two items.
fn pair(v: &PickleValue) -> Option<(&PickleValue, &PickleValue)> {
    match v {
        PickleValue::Tuple(items) | PickleValue::List(items) => match items.as_slice() {
            [a, b] => Some((a, b)),
            _ => None,
        },
        _ => None,
    }
}

fn entry(v: &PickleValue) -> Option<((i64, i64), i64)> {
    let (center, width) = pair(v)?;
    let (row, col) = pair(center)?;
    Some(((int(row)?, int(col)?), int(width)?))
}

/// Checks that `value` is `{int: ((int, int), int)}` and converts it. Bools are not
/// accepted as ints. A key repeated in the pickle keeps its last value, as in Python.
pub(crate) fn to_centers(value: &PickleValue) -> Result<CentersMap, TorchFileError> {
    let PickleValue::Dict(pairs) = value else {
        return Err(TorchFileError::structure(format!(
            "expected a dict {{tile_id: ((row, col), width)}}, found {}",
            value.describe(SHOW)
        )));
    };
    let mut out = CentersMap::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let id = int(k).ok_or_else(|| {
            TorchFileError::structure(format!(
                "dict key #{i} should be an int tile id, found {}",
                k.describe(SHOW)
            ))
        })?;
        let e = entry(v).ok_or_else(|| {
            TorchFileError::structure(format!(
                "value for tile {id} should be ((row, col), width) of ints, found {}",
                v.describe(SHOW)
            ))
        })?;
        out.insert(id, e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PickleValue as V;

    fn t(items: Vec<V>) -> V {
        V::Tuple(items)
    }

    fn good(id: i64, r: i64, c: i64, w: i64) -> (V, V) {
        (
            V::Int(id),
            t(vec![t(vec![V::Int(r), V::Int(c)]), V::Int(w)]),
        )
    }

    #[test]
    fn converts_tuples_and_lists() {
        let list_form = V::List(vec![V::List(vec![V::Int(1), V::Int(2)]), V::Int(3)]);
        let d = V::Dict(vec![good(5, -1, 1 << 40, 64), (V::Int(-7), list_form)]);
        let m = to_centers(&d).unwrap();
        let want: CentersMap = [(5, ((-1, 1 << 40), 64)), (-7, ((1, 2), 3))].into();
        assert_eq!(m, want);
    }

    #[test]
    fn last_duplicate_wins() {
        let d = V::Dict(vec![good(1, 0, 0, 1), good(1, 9, 9, 9)]);
        assert_eq!(to_centers(&d).unwrap()[&1], ((9, 9), 9));
    }

    #[test]
    fn rejects_wrong_shapes() {
        let msg = |v: V| to_centers(&v).unwrap_err().to_string();
        assert!(msg(V::List(vec![])).contains("expected a dict"));
        let bool_key = V::Dict(vec![(V::Bool(true), good(0, 1, 2, 3).1)]);
        assert!(msg(bool_key).contains("key #0 should be an int tile id, found bool True"));
        let str_key = V::Dict(vec![(V::Str("1".into()), good(0, 1, 2, 3).1)]);
        assert!(msg(str_key).contains("found str '1'"));
        let flat = V::Dict(vec![(V::Int(4), t(vec![V::Int(1), V::Int(2), V::Int(3)]))]);
        assert!(msg(flat).contains(
            "value for tile 4 should be ((row, col), width) of ints, found tuple (1, 2, 3)"
        ));
        let bool_w = V::Dict(vec![(
            V::Int(4),
            t(vec![t(vec![V::Int(1), V::Int(2)]), V::Bool(false)]),
        )]);
        assert!(msg(bool_w).contains("found tuple ((1, 2), False)"));
        let wrapped = V::Dict(vec![(
            V::Int(4),
            t(vec![t(vec![V::Int(1), V::Int(2)]), t(vec![V::Int(3)])]),
        )]);
        assert!(msg(wrapped).contains("tile 4"));
        let float = V::Dict(vec![(
            V::Int(4),
            t(vec![t(vec![V::Float(1.0), V::Int(2)]), V::Int(3)]),
        )]);
        assert!(msg(float).contains("((1.0, 2), 3)"));
    }
}
