//! The pipeline declared in a configuration file under `tasks:`: its stages, tasks
//! and their dependencies, registered by the first write of a process that reads
//! the file (`Tracker::register_declared`) and by `tasker register`.
//!
//! ```yaml
//! tasks:
//!   - stage: extract
//!     name: download
//!     type: python
//!   - stage: transform
//!     name: clean
//!     depends_on: [extract/download]
//! ```
//!
//! Stages are ordered as they first appear and tasks as they appear in their stage,
//! unless an entry gives `stage_order` / `task_order`. Every key is checked: a typo
//! is an error naming the entry and the key, not a silently ignored setting.

use std::collections::{HashMap, HashSet};

use serde_yaml_ng::Value;

use crate::model::TaskSpec;

/// The keys an entry may have (with the spellings `TaskSpec` also accepts).
const KEYS: &[&str] = &[
    "stage",
    "name",
    "task",
    "task_name",
    "type",
    "task_type",
    "description",
    "stage_order",
    "task_order",
    "script_path",
    "script_filename",
    "log_path",
    "log_filename",
    "depends_on",
];

/// Reads the `tasks:` value of a configuration file into task specs, in order.
/// Errors name the entry (by position and name) and what is wrong with it.
pub(crate) fn parse(value: Value) -> Result<Vec<TaskSpec>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        other => {
            return Err(format!(
                "tasks must be a list of entries with stage and name, not {}",
                describe(&other)
            ))
        }
    };
    let mut specs = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let spec = entry(i, item)?;
        spec.validate()
            .map_err(|e| format!("tasks[{i}] ({}/{}): {e}", spec.stage, spec.name))?;
        if !seen.insert((spec.stage.clone(), spec.name.clone())) {
            return Err(format!(
                "tasks[{i}]: {}/{} is declared twice",
                spec.stage, spec.name
            ));
        }
        specs.push(spec);
    }
    fill_orders(&mut specs);
    Ok(specs)
}

fn entry(i: usize, item: Value) -> Result<TaskSpec, String> {
    let Value::Mapping(mut map) = item else {
        return Err(format!(
            "tasks[{i}] must be a mapping with stage and name, not {}",
            describe(&item)
        ));
    };
    for key in map.keys() {
        match key.as_str() {
            Some(k) if KEYS.contains(&k) => {}
            _ => {
                return Err(format!(
                    "tasks[{i}]: unknown key {} (known: stage, name, type, description, \
                     stage_order, task_order, script_path, script_filename, log_path, \
                     log_filename, depends_on)",
                    serde_yaml_ng::to_string(key).unwrap_or_default().trim_end()
                ))
            }
        }
    }
    for required in ["stage", "name"] {
        let given = match required {
            "name" => ["name", "task", "task_name"]
                .iter()
                .any(|k| map.contains_key(*k)),
            _ => map.contains_key(required),
        };
        if !given {
            return Err(format!("tasks[{i}] has no {required}"));
        }
    }
    // `depends_on: extract/download` is one upstream, as a one-item list is.
    if let Some(Value::String(one)) = map.get("depends_on") {
        let one = Value::String(one.clone());
        map.insert("depends_on".into(), Value::Sequence(vec![one]));
    }
    serde_yaml_ng::from_value(Value::Mapping(map)).map_err(|e| format!("tasks[{i}]: {e}"))
}

/// Stages without an explicit order come in the order they first appear; tasks
/// without one in the order they appear in their stage.
fn fill_orders(specs: &mut [TaskSpec]) {
    let mut stage_orders: HashMap<String, i64> = HashMap::new();
    for s in specs.iter() {
        if let Some(o) = s.stage_order {
            stage_orders.entry(s.stage.clone()).or_insert(o);
        }
    }
    let mut next_stage = 1;
    let mut next_task: HashMap<String, i64> = HashMap::new();
    for s in specs.iter_mut() {
        let order = *stage_orders.entry(s.stage.clone()).or_insert_with(|| {
            next_stage += 1;
            next_stage - 1
        });
        s.stage_order.get_or_insert(order);
        let position = next_task.entry(s.stage.clone()).or_insert(0);
        *position += 1;
        s.task_order.get_or_insert(*position);
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(yaml: &str) -> Result<Vec<TaskSpec>, String> {
        parse(serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn orders_follow_the_declaration_unless_given() {
        let specs = parsed(
            "- {stage: extract, name: download, type: python}\n\
             - {stage: transform, name: clean, depends_on: extract/download}\n\
             - {stage: extract, name: unzip, depends_on: [download]}\n\
             - {stage: load, name: copy, stage_order: 10, task_order: 5}\n",
        )
        .unwrap();
        let orders: Vec<_> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.stage_order, s.task_order))
            .collect();
        assert_eq!(
            orders,
            [
                ("download", Some(1), Some(1)),
                ("clean", Some(2), Some(1)),
                ("unzip", Some(1), Some(2)),
                ("copy", Some(10), Some(5)),
            ]
        );
        assert_eq!(specs[0].task_type.as_deref(), Some("python"));
        assert_eq!(
            specs[1].depends_on,
            Some(vec!["extract/download".to_string()])
        );
        assert_eq!(specs[2].depends_on, Some(vec!["download".to_string()]));
        assert_eq!(specs[3].depends_on, None);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("{stage: a}", "must be a list"),
            ("[stage]", "tasks[0] must be a mapping"),
            ("[{name: x}]", "tasks[0] has no stage"),
            ("[{stage: a}]", "tasks[0] has no name"),
            (
                "[{stage: a, name: x, dependson: [y]}]",
                "unknown key dependson",
            ),
            (
                "[{stage: a, name: x}, {stage: a, name: x}]",
                "tasks[1]: a/x is declared twice",
            ),
            ("[{stage: a, name: x, stage_order: first}]", "tasks[0]"),
            ("[{stage: '', name: x}]", "tasks[0] (/x)"),
        ];
        for (yaml, expected) in cases {
            let err = parsed(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
        assert!(parsed("~").unwrap().is_empty());
    }
}
