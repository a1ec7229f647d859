//! Sends one alert to its destination: an HTTP POST (blocking, short timeout:
//! it runs on the writer thread or an evaluator, never a pipeline call's) or a
//! command with the alert on its standard input. Errors are returned as text
//! with every secret of the destination (its URL, its header values) removed,
//! because they are stored and shown.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::rules::{BodyFormat, Destination};
use super::Alert;

/// Delivers `alert`; `Err` says why not, without secrets.
pub fn deliver(dest: &Destination, alert: &Alert) -> Result<(), String> {
    match dest {
        Destination::Webhook {
            url,
            format,
            headers,
            timeout,
        } => {
            let body = match format {
                BodyFormat::Json => serde_json::to_vec(alert),
                BodyFormat::Slack => {
                    serde_json::to_vec(&serde_json::json!({"text": alert.summary}))
                }
            }
            .map_err(|e| format!("cannot encode the alert: {e}"))?;
            let secrets: Vec<&str> = std::iter::once(url.expose())
                .chain(headers.iter().map(|(_, v)| v.expose()))
                .collect();
            post(url.expose(), headers, &body, *timeout).map_err(|e| scrub(&e, &secrets))
        }
        Destination::Command { argv, timeout } => {
            let body =
                serde_json::to_vec(alert).map_err(|e| format!("cannot encode the alert: {e}"))?;
            run_command(argv, &body, *timeout)
        }
    }
}

#[cfg(feature = "alerts")]
fn post(
    url: &str,
    headers: &[(String, crate::config::Secret)],
    body: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .into();
    let mut req = agent.post(url).content_type("application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    match req.send(body) {
        Ok(_) => Ok(()),
        Err(ureq::Error::StatusCode(code)) => Err(format!("the webhook answered HTTP {code}")),
        Err(ureq::Error::Timeout(_)) => Err(format!(
            "the webhook did not answer within {} s",
            timeout.as_secs()
        )),
        Err(e) => Err(format!("the webhook could not be reached: {e}")),
    }
}

#[cfg(not(feature = "alerts"))]
fn post(
    _url: &str,
    _headers: &[(String, crate::config::Secret)],
    _body: &[u8],
    _timeout: Duration,
) -> Result<(), String> {
    Err("webhooks need tasker built with the feature `alerts`".into())
}

/// Replaces every secret (and, for URLs, everything after the host) with `***`.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "***");
        // Parts of a URL an error may quote on their own (its path holds the token).
        if let Some(rest) = s.split_once("://").map(|(_, r)| r) {
            if let Some((_, path)) = rest.split_once('/') {
                if path.len() >= 4 {
                    out = out.replace(path, "***");
                }
            }
        }
    }
    out
}

/// Runs the command with the alert on stdin; it must exit 0 within `timeout`.
fn run_command(argv: &[String], body: &[u8], timeout: Duration) -> Result<(), String> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", argv[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading its input is its own business.
        let _ = stdin.write_all(body);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{:?} ended with {status}", argv[0])),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{:?} did not finish within {} s (killed)",
                    argv[0],
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {:?}: {e}", argv[0])),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_from_errors() {
        let url = "https://hooks.example/services/T0/B0/s3cretToken";
        let e = format!("bad uri {url} and /services/T0/B0/s3cretToken alone, header tok3n");
        let shown = scrub(&e, &[url, "tok3n"]);
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
