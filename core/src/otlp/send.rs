//! One POST of encoded spans to the collector (OTLP/HTTP, binary protobuf), with
//! a blocking client and short timeouts: the writer thread calls it between its
//! own flushes and must not sit in it while progress waits.

use std::time::Duration;

use super::config::OtlpConfig;

/// How a POST went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    Delivered,
    /// The collector answered that it will never take these spans (a 4xx other
    /// than 408/429): retrying would not help.
    Refused(String),
    /// The collector could not be reached, timed out or is overloaded: retry.
    Unreachable(String),
}

#[derive(Debug)]
pub(crate) struct Sender {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
}

impl Sender {
    pub(crate) fn new(c: &OtlpConfig) -> Sender {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(c.timeout))
            .timeout_connect(Some(c.timeout.min(Duration::from_secs(2))))
            // Statuses are answers to interpret, not transport errors.
            .http_status_as_error(false)
            .build()
            .into();
        Sender {
            agent,
            url: c.traces_url.clone(),
            headers: c.headers.clone(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn post(&self, body: &[u8]) -> Delivery {
        let mut req = self
            .agent
            .post(&self.url)
            .header("content-type", "application/x-protobuf");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body) {
            Err(e) => Delivery::Unreachable(e.to_string()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Delivery::Delivered,
                    408 | 429 | 500..=599 => {
                        Delivery::Unreachable(format!("the collector answered HTTP {status}"))
                    }
                    _ => Delivery::Refused(format!("the collector answered HTTP {status}")),
                }
            }
        }
    }
}
