//! Run ids as people type and read them. A UUIDv7 starts with its timestamp
//! (the first 13 characters are milliseconds), so runs started together share
//! a long prefix: [`short_ids`] gives each id the shortest prefix that is unique
//! in the database (at least `MIN_SHORT` characters), and [`resolve`] takes
//! any unique prefix back to its run (`tasker show 0190a1b2-c3`).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::Tracker;

/// The shortest id prefix shown: a UUIDv7's first 8 characters change every
/// 65 seconds, so runs started apart rarely need more.
const MIN_SHORT: usize = 8;

/// How many candidates an ambiguous prefix lists.
const CANDIDATES: usize = 10;

/// Runs sharing a prefix read at once when making short ids; a crowd larger
/// than this (runs started in the same 65 s) is narrowed to the millisecond.
const CROWD: usize = 256;

/// The run id `given` names: an id, or a prefix of exactly one. An unknown id is
/// `NotFound`; a prefix of several is `InvalidArgument` listing them (newest
/// last, at most ten, with their stage and task).
pub fn resolve(t: &Tracker, given: &str) -> Result<String> {
    let given = given.trim();
    if given.is_empty() {
        return Err(Error::invalid("run id", given, "is empty"));
    }
    let ids = t.run_ids_with_prefix(given, CANDIDATES + 1)?;
    if ids.iter().any(|id| id == given) {
        return Ok(given.to_string());
    }
    match ids.len() {
        0 => Err(Error::not_found("run", given)),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        n => {
            let mut list = String::new();
            for id in ids.iter().take(CANDIDATES) {
                let what = t
                    .run(id)
                    .map(|r| format!(" ({}/{})", r.stage_name, r.task_name))
                    .unwrap_or_default();
                list.push_str(&format!("\n  {id}{what}"));
            }
            if n > CANDIDATES {
                list.push_str("\n  ... and more");
            }
            Err(Error::invalid(
                "run id",
                given,
                &format!("is the start of several runs; give more of it:{list}"),
            ))
        }
    }
}

/// The shortest unique prefix of each id (at least `MIN_SHORT` characters, never
/// ending at a `-`), by id. One indexed query per distinct 8-character prefix.
pub fn short_ids<'a>(
    t: &Tracker,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for id in ids {
        if !out.contains_key(id) {
            out.insert(id.to_string(), id.to_string());
            groups
                .entry(prefix(id, MIN_SHORT))
                .or_default()
                .push(id.to_string());
        }
    }
    for (p, members) in groups {
        let near = t.run_ids_with_prefix(&p, CROWD)?;
        for id in members {
            let short = if near.len() < CROWD {
                unique_prefix(&id, &near, MIN_SHORT)
            } else {
                // Crowded: only ids of the same millisecond (and version digit) can
                // share more than 15 characters.
                let same_ms = t.run_ids_with_prefix(&prefix(&id, 15), CROWD)?;
                if same_ms.len() < CROWD {
                    unique_prefix(&id, &same_ms, 16)
                } else {
                    id.clone()
                }
            };
            out.insert(id, short);
        }
    }
    Ok(out)
}

/// The first `n` characters of `s` (all of it when shorter).
fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The shortest prefix of `id`, at least `min` characters, that no other id of
/// `others` starts with (ids outside `others` must differ within `min`).
fn unique_prefix(id: &str, others: &[String], min: usize) -> String {
    let shared = others
        .iter()
        .filter(|o| o.as_str() != id)
        .map(|o| {
            id.chars()
                .zip(o.chars())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    let mut n = (shared + 1).max(min);
    let chars: Vec<char> = id.chars().collect();
    // `0190a1b2-` reads as cut: take the character after a dash too.
    while n < chars.len() && chars[n - 1] == '-' {
        n += 1;
    }
    chars[..n.min(chars.len())].iter().collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn unique_prefixes_are_as_short_as_they_can_be() {
        let ids: Vec<String> = [
            "0190a1b2-c3d4-7aaa-8000-000000000001",
            "0190a1b2-c3d4-7abb-8000-000000000002",
            "0190a1b2-ffff-7abb-8000-000000000003",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(unique_prefix(&ids[0], &ids, 8), "0190a1b2-c3d4-7aa");
        // Sharing 8 characters needs 9, which ends at a dash: one more.
        assert_eq!(
            unique_prefix(&ids[2], &ids, 8),
            "0190a1b2-f",
            "no dash at the end"
        );
        assert_eq!(
            unique_prefix(&ids[2], &ids[2..], 8),
            "0190a1b2",
            "alone: the minimum"
        );
        assert_eq!(unique_prefix("abc", &[], 8), "abc");
    }
}
