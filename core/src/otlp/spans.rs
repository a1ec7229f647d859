//! A run as an OpenTelemetry trace: the run is the root span, each subtask a
//! child span, each transition a span event on the span it concerns. Ids are
//! derived from the run id, so exporting a run again gives the same trace and
//! spans (a collector sees an update, never a second trace).
//!
//! Resource attributes follow the semantic conventions (`service.name`,
//! `host.name`, `process.pid`, `process.command_line`, `process.owner`,
//! `process.runtime.description`); runs of one host and process share one
//! resource. What the conventions do not cover is `tasker.*` on the spans.

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status::StatusCode, ResourceSpans, ScopeSpans, Span, Status as SpanStatus,
};
use sha2::{Digest, Sha256};

use super::config::OtlpConfig;
use crate::model::Status;
use crate::query::{EventRow, RunRow, SubtaskRow};

/// What one run's trace is made of, as read from the store.
#[derive(Clone, Debug)]
pub struct RunTrace {
    /// A run row (derived, so that `lost` is known).
    pub run: RunRow,
    pub subtasks: Vec<SubtaskRow>,
    /// The run's events (its own and its subtasks'), oldest first.
    pub events: Vec<EventRow>,
}

/// What the resource says besides each run's host and process.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub service_name: String,
    pub attributes: Vec<(String, String)>,
}

impl ResourceInfo {
    /// The service name and resource attributes the environment gives
    /// (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) over the file's `otlp:`,
    /// with or without an endpoint: for exports to a file. A malformed variable is
    /// an error naming it.
    pub fn from_env(
        file: Option<&crate::otlp_settings::OtlpSettings>,
    ) -> crate::Result<ResourceInfo> {
        let env = super::config::vars(file);
        let (service_name, attributes) =
            super::config::resource_from_vars(&env).map_err(crate::Error::Config)?;
        Ok(ResourceInfo {
            service_name,
            attributes,
        })
    }

    pub fn from_config(c: &OtlpConfig) -> ResourceInfo {
        ResourceInfo {
            service_name: c.service_name.clone(),
            attributes: c.resource_attributes.clone(),
        }
    }
}

/// The trace id of a run: its UUID's 16 bytes (`None` when the id is not a UUID).
pub fn trace_id(run_id: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(run_id).ok().map(|u| *u.as_bytes())
}

/// A span id within a run's trace: the first 8 bytes of a SHA-256 of the run's
/// UUID and what the span is (the run, or subtask n). Never all zero (invalid).
pub fn span_id(trace: &[u8; 16], subtask: Option<i64>) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(trace);
    match subtask {
        None => h.update(b"run"),
        Some(n) => {
            h.update(b"subtask");
            h.update(n.to_be_bytes());
        }
    }
    let digest = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

/// One request holding the traces of these runs (runs without a valid id or a
/// start are left out: there is nothing to place in time). `now` ends the spans
/// of runs still active.
pub fn request(
    runs: &[RunTrace],
    resource: &ResourceInfo,
    now: DateTime<Utc>,
) -> ExportTraceServiceRequest {
    request_of(runs.iter().map(|rt| (rt, Part::Whole)), resource, now)
}

/// Which spans of a run's trace a request holds.
#[derive(Clone, Copy)]
pub(crate) enum Part<'a> {
    Whole,
    /// The run's span and its subtasks' except those already sent as they are.
    WholeExcept(&'a dyn Fn(&SubtaskRow) -> bool),
    /// Only the subtasks that ended and were not sent as they are.
    EndedSubtasks(&'a dyn Fn(&SubtaskRow) -> bool),
}

impl Part<'_> {
    fn has_run(self) -> bool {
        !matches!(self, Part::EndedSubtasks(_))
    }

    fn has(self, s: &SubtaskRow) -> bool {
        match self {
            Part::Whole => true,
            Part::WholeExcept(sent) => !sent(s),
            Part::EndedSubtasks(sent) => s.status.is_terminal() && s.end_time.is_some() && !sent(s),
        }
    }
}

/// One request holding these parts of these runs' traces.
pub(crate) fn request_of<'a>(
    runs: impl Iterator<Item = (&'a RunTrace, Part<'a>)>,
    resource: &ResourceInfo,
    now: DateTime<Utc>,
) -> ExportTraceServiceRequest {
    let mut groups: Vec<(ResourceKey, Vec<Span>)> = Vec::new();
    for (rt, part) in runs {
        let Some(spans) = run_spans(rt, part, now) else {
            continue;
        };
        if spans.is_empty() {
            continue;
        }
        let key = ResourceKey::of(&rt.run);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, all)) => all.extend(spans),
            None => groups.push((key, spans)),
        }
    }
    let resource_spans = groups
        .into_iter()
        .map(|(key, spans)| ResourceSpans {
            resource: Some(key.resource(resource)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tasker".into(),
                    version: crate::VERSION.into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// The host and process a run ran in: runs that share them share a resource.
#[derive(Debug, PartialEq)]
struct ResourceKey {
    host: Option<String>,
    pid: Option<i64>,
    command_line: Option<String>,
    owner: Option<String>,
    runtime: Option<String>,
}

impl ResourceKey {
    fn of(r: &RunRow) -> ResourceKey {
        ResourceKey {
            host: r.hostname.clone(),
            pid: r.process_id,
            command_line: r.command_line.clone(),
            owner: r.user_name.clone(),
            runtime: r.runtime.clone(),
        }
    }

    fn resource(self, info: &ResourceInfo) -> Resource {
        let mut attributes = vec![kv_str("service.name", &info.service_name)];
        attributes.extend(info.attributes.iter().map(|(k, v)| kv_str(k, v)));
        opt_str(&mut attributes, "host.name", self.host.as_deref());
        if let Some(pid) = self.pid {
            attributes.push(kv_int("process.pid", pid));
        }
        opt_str(
            &mut attributes,
            "process.command_line",
            self.command_line.as_deref(),
        );
        opt_str(&mut attributes, "process.owner", self.owner.as_deref());
        opt_str(
            &mut attributes,
            "process.runtime.description",
            self.runtime.as_deref(),
        );
        Resource {
            attributes,
            ..Resource::default()
        }
    }
}

/// The run's span followed by its subtasks' spans (those `part` holds).
fn run_spans(rt: &RunTrace, part: Part<'_>, now: DateTime<Utc>) -> Option<Vec<Span>> {
    let r = &rt.run;
    let trace = trace_id(r.run_id.as_deref()?)?;
    let start = r.start_time?;
    let root = span_id(&trace, None);
    let end = r.end_time.unwrap_or_else(|| r.clock_stop(now));

    let mut attributes = vec![
        kv_str("tasker.stage", &r.stage_name),
        kv_str("tasker.task", &r.task_name),
        kv_str("tasker.run_id", r.run_id.as_deref().unwrap_or_default()),
        kv_str("tasker.status", r.status.as_str()),
    ];
    if r.lost {
        attributes.push(kv_bool("tasker.lost", true));
    }
    let done: i64 = rt.subtasks.iter().map(|s| s.items_complete).sum();
    let total: Option<i64> = rt.subtasks.iter().map(|s| s.items_total).sum();
    attributes.push(kv_int("tasker.items.done", done));
    if let Some(total) = total {
        attributes.push(kv_int("tasker.items.total", total));
    }
    attributes.push(kv_int("tasker.subtasks.total", rt.subtasks.len() as i64));
    attributes.push(kv_int("tasker.subtasks.completed", r.subtasks_completed));
    if let Some(a) = r.attempt {
        attributes.push(kv_int("tasker.attempt", a));
    }
    opt_str(&mut attributes, "tasker.retry_of", r.retry_of.as_deref());
    opt_str(&mut attributes, "tasker.task_type", r.task_type.as_deref());
    opt_str(&mut attributes, "tasker.version", r.version.as_deref());
    opt_str(
        &mut attributes,
        "tasker.message",
        r.overall_progress_message.as_deref(),
    );
    opt_str(&mut attributes, "code.file.path", r.script_path.as_deref());
    opt_str(
        &mut attributes,
        "vcs.ref.head.revision",
        r.git_commit.as_deref(),
    );
    if let Some(w) = r.wait_seconds {
        attributes.push(kv_double("tasker.wait_seconds", w));
    }

    let status = if r.lost {
        error_status("lost")
    } else {
        span_status(r.status, r.error_message.as_deref())
    };
    let mut spans = Vec::with_capacity(rt.subtasks.len() + 1);
    if part.has_run() {
        spans.push(Span {
            trace_id: trace.to_vec(),
            span_id: root.to_vec(),
            name: format!("{}/{}", r.stage_name, r.task_name),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: nanos(start),
            end_time_unix_nano: nanos(end.max(start)),
            attributes,
            events: events_of(&rt.events, None),
            status: Some(status),
            ..Span::default()
        });
    }
    for s in rt.subtasks.iter().filter(|s| part.has(s)) {
        let Some(s_start) = s.start_time else {
            continue;
        };
        let s_end = s.end_time.unwrap_or(end).max(s_start);
        let mut attributes = vec![
            kv_int("tasker.subtask.number", s.subtask_number),
            kv_str("tasker.status", s.status.as_str()),
            kv_int("tasker.items.done", s.items_complete),
        ];
        if let Some(total) = s.items_total {
            attributes.push(kv_int("tasker.items.total", total));
        }
        opt_str(
            &mut attributes,
            "tasker.message",
            s.progress_message.as_deref(),
        );
        spans.push(Span {
            trace_id: trace.to_vec(),
            span_id: span_id(&trace, Some(s.subtask_number)).to_vec(),
            parent_span_id: root.to_vec(),
            name: if s.subtask_name.is_empty() {
                format!("subtask {}", s.subtask_number)
            } else {
                s.subtask_name.clone()
            },
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: nanos(s_start),
            end_time_unix_nano: nanos(s_end),
            attributes,
            events: events_of(&rt.events, Some(s.subtask_number)),
            status: Some(span_status(s.status, s.error_message.as_deref())),
            ..Span::default()
        });
    }
    Some(spans)
}

/// COMPLETED is OK, FAILED an error with its message; anything else (CANCELLED,
/// SKIPPED, still active) is left unset: `tasker.status` says which.
fn span_status(status: Status, error: Option<&str>) -> SpanStatus {
    match status {
        Status::Completed => SpanStatus {
            message: String::new(),
            code: StatusCode::Ok as i32,
        },
        Status::Failed => error_status(error.unwrap_or("failed")),
        _ => SpanStatus::default(),
    }
}

fn error_status(message: &str) -> SpanStatus {
    SpanStatus {
        message: message.to_string(),
        code: StatusCode::Error as i32,
    }
}

/// The transitions of the run itself (`subtask` None) or of one subtask, named
/// by the status reached (`reset` for a reset).
fn events_of(events: &[EventRow], subtask: Option<i64>) -> Vec<span::Event> {
    events
        .iter()
        .filter(|e| e.subtask_number == subtask)
        .map(|e| {
            let mut attributes = vec![kv_str("tasker.new_status", e.new_status.as_str())];
            if let Some(old) = e.old_status {
                attributes.push(kv_str("tasker.old_status", old.as_str()));
            }
            opt_str(&mut attributes, "tasker.message", e.message.as_deref());
            span::Event {
                time_unix_nano: nanos(e.time),
                name: if e.kind == "reset" {
                    "reset".to_string()
                } else {
                    e.new_status.as_str().to_string()
                },
                attributes,
                dropped_attributes_count: 0,
            }
        })
        .collect()
}

fn nanos(t: DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn kv_str(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn kv_int(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn kv_double(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(v))
}

fn kv_bool(key: &str, v: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(v))
}

fn opt_str(out: &mut Vec<KeyValue>, key: &str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        out.push(kv_str(key, v));
    }
}
