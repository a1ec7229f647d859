//! `alerts:` in a configuration file: rules (what is an incident) and
//! destinations (where its alert goes). Read with the rest of the file, checked
//! once: a rule or destination that cannot work is refused naming it.
//!
//! ```yaml
//! alerts:
//!   destinations:
//!     ops: {webhook: "${SLACK_URL}", format: slack}
//!     pager: {command: [/usr/local/bin/page, --team, data]}
//!   rules:
//!     - {name: failures, on: failed, stage: etl, to: ops}
//!     - {name: stalled, on: stall, minutes: 30, to: ops}
//!     - {name: slow, on: too_long, p95_factor: 3, to: pager}
//!     - {name: nightly, on: dead_man, stage: etl, task: load, hours: 26, to: ops}
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

/// Attempts per alert when the configuration does not say.
const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// How long one webhook call or command may take when the destination does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a destination may take: deliveries run on the writer thread.
const MAX_TIMEOUT_S: u64 = 30;

/// `alerts:` as written in a file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    pub rules: Vec<RuleSettings>,
    pub destinations: BTreeMap<String, DestinationSettings>,
    pub max_attempts: Option<u32>,
}

/// One rule as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    pub name: Option<String>,
    pub on: Option<String>,
    pub stage: Option<String>,
    pub task: Option<String>,
    pub minutes: Option<f64>,
    pub hours: Option<f64>,
    pub p95_factor: Option<f64>,
    pub max_minutes: Option<f64>,
    pub to: Option<String>,
}

/// One destination as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationSettings {
    pub webhook: Option<Secret>,
    pub format: Option<String>,
    pub headers: BTreeMap<String, Secret>,
    pub command: Option<Vec<String>>,
    pub timeout_s: Option<u64>,
}

/// The checked alert configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertConfig {
    pub rules: Vec<Rule>,
    pub destinations: BTreeMap<String, Destination>,
    /// Delivery attempts per alert before it is given up (recorded as such).
    pub max_attempts: u32,
}

/// What makes an incident.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// A run became FAILED (sent by the failing process itself).
    Failed,
    /// An active run is lost: its process is gone or its heartbeat too old.
    Lost,
    /// A running subtask has not progressed for this long.
    Stall { after: Duration },
    /// A run has run longer than `p95_factor` x its task's p95 duration, or
    /// than `max` (whichever is known and smaller).
    TooLong {
        p95_factor: Option<f64>,
        max: Option<Duration>,
    },
    /// The task has not succeeded for this long.
    DeadMan { after: Duration },
}

impl Trigger {
    /// The kind as stored and sent (`failed`, `lost`, `stall`, `too_long`, `dead_man`).
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Failed => "failed",
            Trigger::Lost => "lost",
            Trigger::Stall { .. } => "stall",
            Trigger::TooLong { .. } => "too_long",
            Trigger::DeadMan { .. } => "dead_man",
        }
    }
}

/// A checked rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub trigger: Trigger,
    pub stage: Option<String>,
    pub task: Option<String>,
    /// The destination's name (a key of `AlertConfig::destinations`).
    pub to: String,
}

impl Rule {
    /// Whether the rule's stage and task filters let this task through.
    pub fn covers(&self, stage: &str, task: &str) -> bool {
        self.stage.as_deref().is_none_or(|s| s == stage)
            && self.task.as_deref().is_none_or(|t| t == task)
    }
}

/// Where an alert goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    /// An HTTP POST of the alert as JSON (`Json`) or as `{"text": ...}` (`Slack`).
    Webhook {
        url: Secret,
        format: BodyFormat,
        headers: Vec<(String, Secret)>,
        timeout: Duration,
    },
    /// A program run with the alert as JSON on its standard input.
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Slack,
}

impl AlertSettings {
    /// Checks the settings: every value that cannot work is refused, named.
    pub fn build(&self) -> std::result::Result<AlertConfig, String> {
        let bad = |msg: String| format!("alerts: {msg}");
        let mut destinations = BTreeMap::new();
        for (name, d) in &self.destinations {
            destinations.insert(name.clone(), d.build(name).map_err(bad)?);
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let rule = r.build(i, &destinations).map_err(bad)?;
            if rules.iter().any(|o| o.name == rule.name) {
                return Err(bad(format!("two rules are named {:?}", rule.name)));
            }
            rules.push(rule);
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(bad("max_attempts must be at least 1, not 0".into()));
        }
        Ok(AlertConfig {
            rules,
            destinations,
            max_attempts,
        })
    }
}

impl RuleSettings {
    fn build(
        &self,
        index: usize,
        destinations: &BTreeMap<String, Destination>,
    ) -> std::result::Result<Rule, String> {
        let name = match self.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err(format!("rule {} has no name", index + 1)),
        };
        let on = self.on.as_deref().ok_or_else(|| {
            format!("rule {name:?} says no `on:` (failed, lost, stall, too_long or dead_man)")
        })?;
        let positive = |key: &str, v: Option<f64>| -> std::result::Result<Option<f64>, String> {
            match v {
                Some(x) if !(x.is_finite() && x > 0.0) => Err(format!(
                    "rule {name:?}: {key} must be a positive number, not {x}"
                )),
                other => Ok(other),
            }
        };
        let minutes = positive("minutes", self.minutes)?;
        let hours = positive("hours", self.hours)?;
        let p95_factor = positive("p95_factor", self.p95_factor)?;
        let max_minutes = positive("max_minutes", self.max_minutes)?;
        let secs = |x: f64, unit: f64| Duration::from_secs_f64(x * unit);
        let trigger = match on {
            "failed" => Trigger::Failed,
            "lost" => Trigger::Lost,
            "stall" => Trigger::Stall {
                after: secs(
                    minutes.ok_or_else(|| format!("rule {name:?} (stall) needs minutes"))?,
                    60.0,
                ),
            },
            "too_long" => {
                if p95_factor.is_none() && max_minutes.is_none() {
                    return Err(format!(
                        "rule {name:?} (too_long) needs p95_factor, max_minutes or both"
                    ));
                }
                Trigger::TooLong {
                    p95_factor,
                    max: max_minutes.map(|m| secs(m, 60.0)),
                }
            }
            "dead_man" => {
                if self.stage.is_none() || self.task.is_none() {
                    return Err(format!("rule {name:?} (dead_man) needs a stage and a task"));
                }
                Trigger::DeadMan {
                    after: secs(
                        hours.ok_or_else(|| format!("rule {name:?} (dead_man) needs hours"))?,
                        3600.0,
                    ),
                }
            }
            other => {
                return Err(format!(
                    "rule {name:?}: unknown `on: {other}` (use failed, lost, stall, too_long or dead_man)"
                ))
            }
        };
        // A setting the rule's kind does not read is a mistake, not a no-op.
        let allowed: &[&str] = match trigger {
            Trigger::Stall { .. } => &["minutes"],
            Trigger::TooLong { .. } => &["p95_factor", "max_minutes"],
            Trigger::DeadMan { .. } => &["hours"],
            Trigger::Failed | Trigger::Lost => &[],
        };
        for (key, set) in [
            ("minutes", minutes.is_some()),
            ("hours", hours.is_some()),
            ("p95_factor", p95_factor.is_some()),
            ("max_minutes", max_minutes.is_some()),
        ] {
            if set && !allowed.contains(&key) {
                return Err(format!("rule {name:?}: {key} does not apply to `on: {on}`"));
            }
        }
        let to = self
            .to
            .clone()
            .ok_or_else(|| format!("rule {name:?} says no destination (`to:`)"))?;
        if !destinations.contains_key(&to) {
            return Err(format!(
                "rule {name:?} sends to {to:?}, which is not under alerts.destinations"
            ));
        }
        Ok(Rule {
            name,
            trigger,
            stage: self.stage.clone(),
            task: self.task.clone(),
            to,
        })
    }
}

impl DestinationSettings {
    fn build(&self, name: &str) -> std::result::Result<Destination, String> {
        let timeout = match self.timeout_s {
            None => DEFAULT_TIMEOUT,
            Some(s) if (1..=MAX_TIMEOUT_S).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(format!(
                    "destination {name:?}: timeout_s must be between 1 and {MAX_TIMEOUT_S}, not {s}"
                ))
            }
        };
        match (&self.webhook, &self.command) {
            (Some(url), None) => {
                let u = url.expose();
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    // The URL is a secret: say what is wrong without it.
                    return Err(format!(
                        "destination {name:?}: the webhook must be an http:// or https:// URL"
                    ));
                }
                let format = match self.format.as_deref() {
                    None | Some("json") => BodyFormat::Json,
                    Some("slack") => BodyFormat::Slack,
                    Some(other) => {
                        return Err(format!(
                            "destination {name:?}: unknown format {other:?} (use json or slack)"
                        ))
                    }
                };
                if !cfg!(feature = "alerts") {
                    return Err(format!(
                        "destination {name:?}: webhooks need tasker built with the feature `alerts`"
                    ));
                }
                Ok(Destination::Webhook {
                    url: url.clone(),
                    format,
                    headers: self
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    timeout,
                })
            }
            (None, Some(argv)) => {
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(format!("destination {name:?}: the command is empty"));
                }
                if self.format.is_some() || !self.headers.is_empty() {
                    return Err(format!(
                        "destination {name:?}: format and headers apply to webhooks only"
                    ));
                }
                Ok(Destination::Command {
                    argv: argv.clone(),
                    timeout,
                })
            }
            (Some(_), Some(_)) => Err(format!(
                "destination {name:?} has both a webhook and a command: give one"
            )),
            (None, None) => Err(format!(
                "destination {name:?} has neither a webhook nor a command"
            )),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse(yaml: &str) -> Result<AlertConfig, String> {
        let s: AlertSettings = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        s.build()
    }

    #[test]
    #[cfg(feature = "alerts")]
    fn a_full_configuration_is_read() {
        let c = parse(
            "destinations:\n  ops: {webhook: 'https://hooks.example/T0/s3cret', format: slack, headers: {Authorization: 'Bearer tok3n'}}\n  pager: {command: [/bin/cat]}\nrules:\n  - {name: f, on: failed, stage: etl, to: ops}\n  - {name: l, on: lost, to: pager}\n  - {name: s, on: stall, minutes: 30, to: ops}\n  - {name: t, on: too_long, p95_factor: 3, to: ops}\n  - {name: d, on: dead_man, stage: etl, task: load, hours: 26, to: ops}\n",
        )
        .unwrap();
        assert_eq!(c.rules.len(), 5);
        assert_eq!(c.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert!(c.rules[0].covers("etl", "x") && !c.rules[0].covers("report", "x"));
        assert_eq!(
            c.rules[2].trigger,
            Trigger::Stall {
                after: Duration::from_secs(1800)
            }
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    #[test]
    fn mistakes_are_refused_naming_them() {
        let dest = "destinations: {ops: {command: [/bin/cat]}}\n";
        for (rules, needle) in [
            ("rules: [{name: a, on: failled, to: ops}]", "failled"),
            ("rules: [{name: a, on: stall, to: ops}]", "needs minutes"),
            (
                "rules: [{name: a, on: failed, minutes: 3, to: ops}]",
                "minutes does not apply",
            ),
            ("rules: [{name: a, on: lost, to: nowhere}]", "nowhere"),
            (
                "rules: [{name: a, on: dead_man, hours: 2, to: ops}]",
                "stage and a task",
            ),
            ("rules: [{name: a, on: too_long, to: ops}]", "p95_factor"),
            ("rules: [{name: a, on: stall, minutes: -1, to: ops}]", "-1"),
            (
                "rules: [{name: a, on: lost, to: ops, colour: red}]",
                "colour",
            ),
            ("rules: [{on: lost, to: ops}]", "rule 1 has no name"),
            (
                "rules: [{name: a, on: lost, to: ops}, {name: a, on: failed, to: ops}]",
                "two rules",
            ),
        ] {
            let err = parse(&format!("{dest}{rules}\n")).unwrap_err();
            assert!(err.contains(needle), "{rules}: {err}");
        }
        for (d, needle) in [
            ("{ops: {webhook: 'ftp://x/s3cret'}}", "http"),
            ("{ops: {webhook: 'https://x/s3cret', format: xml}}", "xml"),
            ("{ops: {}}", "neither"),
            ("{ops: {command: []}}", "empty"),
            ("{ops: {command: [a], timeout_s: 99}}", "99"),
        ] {
            let err = parse(&format!("destinations: {d}\n")).unwrap_err();
            assert!(err.contains(needle), "{d}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
