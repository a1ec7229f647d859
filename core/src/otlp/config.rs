//! Where and how runs are exported: the standard OpenTelemetry environment
//! variables (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`), over the `otlp:` keys of the configuration file
//! (`otlp_settings.rs`). Export is on only when an endpoint is given.

use std::collections::HashMap;
use std::sync::Once;
use std::time::Duration;

use crate::otlp_settings::OtlpSettings;

/// The default service name when neither `OTEL_SERVICE_NAME` nor
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES` gives one.
pub const DEFAULT_SERVICE_NAME: &str = "tasker";

/// How long one export may take (connect and answer) unless
/// `OTEL_EXPORTER_OTLP_TIMEOUT` says otherwise. Shorter than the specification's
/// 10 s: the writer thread that sends also writes progress and heartbeats.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A resolved OTLP exporter configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub traces_url: String,
    /// Extra request headers (often an API key: never printed, see `Debug`).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` (without `service.name`, kept in `service_name`).
    pub resource_attributes: Vec<(String, String)>,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("traces_url", &self.traces_url)
            .field("header_names", &header_names)
            .field("timeout", &self.timeout)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .finish()
    }
}

/// Warnings about the configuration are printed once per process, however many
/// trackers read it.
static WARNED: Once = Once::new();

impl OtlpConfig {
    /// The configuration from the process environment over the `otlp:` settings
    /// of the configuration file; `None` when export is off.
    pub fn from_env(file: Option<&OtlpSettings>) -> Option<OtlpConfig> {
        match OtlpConfig::from_vars(&vars(file)) {
            Ok(c) => c,
            Err(why) => {
                WARNED.call_once(|| log::warn!("tasker: OpenTelemetry export is off: {why}"));
                None
            }
        }
    }

    /// The configuration from these variables: `Ok(None)` when no endpoint is
    /// set, `Err` (saying which variable and value) when one is set but unusable.
    pub fn from_vars(env: &HashMap<String, String>) -> Result<Option<OtlpConfig>, String> {
        // Per-signal variables win over the general ones (OTLP exporter specification).
        let get = |general: &str| -> Option<(String, String)> {
            let traces = general.replacen("OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_", 1);
            let found = [traces, general.to_string()]
                .into_iter()
                .find_map(|k| env.get(&k).map(|v| (k.clone(), v.trim().to_string())));
            found.filter(|(_, v)| !v.is_empty())
        };
        let nonempty = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let (key, given, traces_url) = match (
            nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            // The signal's own endpoint is used as given; the general one gets the path.
            (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, url.to_string()),
            (None, Some(base)) => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                base,
                format!("{}/v1/traces", base.trim_end_matches('/')),
            ),
            (None, None) => return Ok(None),
        };
        if !(given.starts_with("http://") || given.starts_with("https://")) {
            return Err(format!("{key}={given:?} is not an http:// or https:// URL"));
        }
        if let Some((key, protocol)) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if protocol != "http/protobuf" {
                return Err(format!(
                    "{key}={protocol:?} is not supported (tasker exports http/protobuf only)"
                ));
            }
        }
        let timeout = match get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some((key, ms)) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(format!(
                        "{key}={ms:?} is not a positive number of milliseconds"
                    ))
                }
            },
        };
        let headers = match get("OTEL_EXPORTER_OTLP_HEADERS") {
            None => Vec::new(),
            // The value may hold secrets: the error names the variable only.
            Some((key, v)) => key_values(&v).map_err(|bad| format!("{key}: {bad}"))?,
        };
        let (service_name, resource_attributes) = resource_from_vars(env)?;
        Ok(Some(OtlpConfig {
            traces_url,
            headers,
            timeout,
            service_name,
            resource_attributes,
        }))
    }
}

/// The process environment, with what the file's `otlp:` says where it says nothing.
pub fn vars(file: Option<&OtlpSettings>) -> HashMap<String, String> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match file {
        Some(settings) => settings.under(&env),
        None => env,
    }
}

/// The service name (`OTEL_SERVICE_NAME`, else `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, else "tasker") and the other resource attributes.
pub fn resource_from_vars(
    env: &HashMap<String, String>,
) -> Result<(String, Vec<(String, String)>), String> {
    let mut attributes = match env.get("OTEL_RESOURCE_ATTRIBUTES") {
        None => Vec::new(),
        Some(v) => key_values(v).map_err(|bad| format!("OTEL_RESOURCE_ATTRIBUTES: {bad}"))?,
    };
    let from_resource = attributes
        .iter()
        .position(|(k, _)| k == "service.name")
        .map(|i| attributes.remove(i).1);
    let service_name = env
        .get("OTEL_SERVICE_NAME")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .or(from_resource)
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    Ok((service_name, attributes))
}

/// `k1=v1,k2=v2` with percent-encoded values (W3C Baggage form, as the
/// specification says for headers and resource attributes). Errors name the
/// position of a bad pair, never its value.
fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .enumerate()
        .map(|(i, pair)| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("pair {} has no '='", i + 1))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(format!("pair {} has an empty key", i + 1));
            }
            Ok((k.to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(OtlpConfig::from_vars(&vars(&[])), Ok(None));
    }

    #[test]
    fn the_general_endpoint_gets_the_traces_path_the_signal_one_is_kept() {
        let c = OtlpConfig::from_vars(&vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.traces_url, "http://c:4318/v1/traces");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.service_name, "tasker");
        let c = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.traces_url, "http://t:1/custom");
    }

    #[test]
    fn headers_resource_attributes_service_name_and_timeout() {
        let c = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcret, x-team = data",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=fromres,deployment.environment=prod",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.headers,
            vec![
                ("api-key".to_string(), "s=cret".to_string()),
                ("x-team".to_string(), "data".to_string())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.service_name, "fromres");
        assert_eq!(
            c.resource_attributes,
            vec![("deployment.environment".to_string(), "prod".to_string())]
        );
        assert!(!format!("{c:?}").contains("cret"), "{c:?}");
        let named = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"),
            ("OTEL_SERVICE_NAME", "etl"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=fromres"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(named.service_name, "etl");
    }

    #[test]
    fn an_unsupported_protocol_or_bad_value_is_refused_naming_it() {
        let e = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""), "{e}");
        let e = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
        ]))
        .unwrap_err();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=\"soon\""),
            "{e}"
        );
        let e = OtlpConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "secretvalue"),
        ]))
        .unwrap_err();
        assert!(!e.contains("secretvalue"), "{e}");
        let e =
            OtlpConfig::from_vars(&vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")])).unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_ENDPOINT=\"c:4318\""), "{e}");
    }
}
