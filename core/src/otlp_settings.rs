//! `otlp:` in a configuration file: the OpenTelemetry export settings a project
//! keeps next to its pipeline (service name, endpoint, headers, resource
//! attributes). They are the file form of the standard `OTEL_*` environment
//! variables, and each variable set in the environment wins over its key here.
//! Always compiled, so that a file with `otlp:` loads in every build; only builds
//! with the `otlp` feature export.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::config::Secret;

/// `otlp:` as written in a file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpSettings {
    /// The collector's base URL (`/v1/traces` is added), or its full traces URL.
    pub endpoint: Option<String>,
    pub service_name: Option<String>,
    /// Request headers, often an API key: never printed.
    pub headers: BTreeMap<String, Secret>,
    pub timeout_ms: Option<u64>,
    pub resource_attributes: BTreeMap<String, String>,
}

impl OtlpSettings {
    /// Refuses values no collector could take, naming the key and the value
    /// (never a header's value).
    pub fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.endpoint {
            let u = url.trim();
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.len() <= "https://".len()
            {
                return Err(format!(
                    "otlp.endpoint {url:?} is not an http:// or https:// URL"
                ));
            }
        }
        if let Some(name) = &self.service_name {
            if name.trim().is_empty() {
                return Err("otlp.service_name is empty".into());
            }
        }
        if self.timeout_ms == Some(0) {
            return Err("otlp.timeout_ms must be at least 1".into());
        }
        if let Some(k) = self
            .headers
            .keys()
            .chain(self.resource_attributes.keys())
            .find(|k| k.trim().is_empty())
        {
            return Err(format!(
                "otlp: empty key {k:?} in headers or resource_attributes"
            ));
        }
        Ok(())
    }

    /// The variables these settings stand for.
    pub fn as_vars(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        if let Some(url) = self.endpoint.as_deref().map(str::trim) {
            // A full traces URL is kept as it is, as its own variable would be.
            let var = if url.trim_end_matches('/').ends_with("/v1/traces") {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            } else {
                "OTEL_EXPORTER_OTLP_ENDPOINT"
            };
            vars.insert(var.to_string(), url.to_string());
        }
        if let Some(name) = &self.service_name {
            vars.insert("OTEL_SERVICE_NAME".into(), name.clone());
        }
        if !self.headers.is_empty() {
            let pairs = self.headers.iter().map(|(k, v)| (k.as_str(), v.expose()));
            vars.insert("OTEL_EXPORTER_OTLP_HEADERS".into(), baggage(pairs));
        }
        if let Some(ms) = self.timeout_ms {
            vars.insert("OTEL_EXPORTER_OTLP_TIMEOUT".into(), ms.to_string());
        }
        if !self.resource_attributes.is_empty() {
            let pairs = self
                .resource_attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            vars.insert("OTEL_RESOURCE_ATTRIBUTES".into(), baggage(pairs));
        }
        vars
    }

    /// The environment with these settings filling what it does not set: a
    /// variable in the environment wins over its key in the file (and a service
    /// name in `OTEL_RESOURCE_ATTRIBUTES` over `service_name`).
    pub fn under(&self, env: &HashMap<String, String>) -> HashMap<String, String> {
        let set = |k: &str| env.get(k).is_some_and(|v| !v.trim().is_empty());
        let env_names_service = set("OTEL_SERVICE_NAME")
            || env
                .get("OTEL_RESOURCE_ATTRIBUTES")
                .is_some_and(|v| v.contains("service.name"));
        let env_names_endpoint =
            set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let mut merged = env.clone();
        for (var, value) in self.as_vars() {
            let env_wins = match var.as_str() {
                "OTEL_SERVICE_NAME" => env_names_service,
                "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => {
                    env_names_endpoint
                }
                other => set(other),
            };
            if !env_wins {
                merged.insert(var, value);
            }
        }
        merged
    }
}

/// `k1=v1,k2=v2`, values percent-encoded where they hold what would split them
/// (the W3C Baggage form the `OTEL_*` variables use).
fn baggage<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| {
            let mut encoded = String::with_capacity(v.len());
            for c in v.chars() {
                match c {
                    '%' | ',' | '=' | ';' => encoded.push_str(&format!("%{:02X}", c as u32)),
                    c => encoded.push(c),
                }
            }
            format!("{}={encoded}", k.trim())
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(yaml: &str) -> OtlpSettings {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn keys_become_the_standard_variables() {
        let s = settings(
            "endpoint: http://collector:4318\nservice_name: nightly-etl\n\
             headers: {api-key: 's=c,ret'}\ntimeout_ms: 1500\n\
             resource_attributes: {deployment.environment: prod}\n",
        );
        let v = s.as_vars();
        assert_eq!(v["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://collector:4318");
        assert_eq!(v["OTEL_SERVICE_NAME"], "nightly-etl");
        assert_eq!(v["OTEL_EXPORTER_OTLP_HEADERS"], "api-key=s%3Dc%2Cret");
        assert_eq!(v["OTEL_EXPORTER_OTLP_TIMEOUT"], "1500");
        assert_eq!(v["OTEL_RESOURCE_ATTRIBUTES"], "deployment.environment=prod");
        assert!(!format!("{s:?}").contains("ret"), "{s:?}");
        let full = settings("endpoint: http://c:4318/v1/traces\n").as_vars();
        assert_eq!(
            full["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let s = settings("endpoint: http://file:1\nservice_name: from-file\ntimeout_ms: 9\n");
        let merged = s.under(&env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://env:2/v1/traces",
            ),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env"),
        ]));
        assert!(!merged.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"));
        assert!(!merged.contains_key("OTEL_SERVICE_NAME"));
        assert_eq!(merged["OTEL_EXPORTER_OTLP_TIMEOUT"], "9");
        let merged = s.under(&env(&[("OTEL_SERVICE_NAME", " ")]));
        assert_eq!(merged["OTEL_SERVICE_NAME"], "from-file");
        assert_eq!(merged["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://file:1");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let e = serde_yaml_ng::from_str::<OtlpSettings>("servce_name: x\n").unwrap_err();
        assert!(e.to_string().contains("servce_name"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_naming_key_and_value() {
        let e = settings("endpoint: collector:4318\n").check().unwrap_err();
        assert!(
            e.contains("otlp.endpoint") && e.contains("collector:4318"),
            "{e}"
        );
        let e = settings("timeout_ms: 0\n").check().unwrap_err();
        assert!(e.contains("otlp.timeout_ms"), "{e}");
        let e = settings("service_name: ' '\n").check().unwrap_err();
        assert!(e.contains("otlp.service_name"), "{e}");
        assert_eq!(settings("service_name: etl\n").check(), Ok(()));
    }
}
