//! The run -> spans mapping and the export queue, without a collector.

use chrono::{TimeZone, Utc};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::spans::{request, span_id, trace_id};
use super::*;
use crate::model::Status;
use crate::query::{EventRow, RunRow, SubtaskRow};

const RUN: &str = "0190f5a2-7c4e-7b3a-9d2f-1a2b3c4d5e6f";

fn t(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn run(status: Status) -> RunRow {
    let mut v = serde_json::json!({
        "run_id": RUN, "stage_name": "ingest", "stage_order": null, "task_name": "download",
        "task_type": null, "task_order": null, "status": status.as_str(),
        "hostname": "node7", "process_id": 4242, "parent_pid": null,
        "process_start_time": null, "user_name": "ana", "start_time": t(0), "end_time": t(10),
        "last_update": t(10), "heartbeat_time": t(10), "total_subtasks": 2,
        "current_subtask": null, "overall_percent_complete": null,
        "overall_progress_message": null, "version": null, "git_commit": "abc123",
        "script_path": "/p/download.py", "script_filename": null, "log_path": null,
        "log_filename": null, "error_message": "disk full", "error_detail": null,
    });
    let rest = serde_json::json!({
        "metadata": null, "attempt": 1, "retry_of": null, "command_line": "python download.py",
        "git_dirty": null, "runtime": "Python 3.11", "tasker_version": null,
        "wait_seconds": null, "subtasks_completed": 1, "lost": false,
        "duration_seconds": null, "eta_seconds": null, "eta_low": null, "eta_high": null,
        "eta_basis": null,
    });
    v.as_object_mut()
        .unwrap()
        .extend(rest.as_object().unwrap().clone());
    let mut r: RunRow = serde_json::from_value(v).unwrap();
    if status != Status::Failed {
        r.error_message = None;
    }
    r
}

fn subtask(n: i64, status: Status, done: i64, total: Option<i64>) -> SubtaskRow {
    serde_json::from_value(serde_json::json!({
        "run_id": RUN, "subtask_number": n, "subtask_name": format!("part {n}"),
        "status": status.as_str(), "start_time": t(n), "end_time": t(n + 2), "last_update": null,
        "items_total": total, "items_complete": done, "percent_complete": null,
        "progress_message": null, "error_message": null, "error_detail": null,
        "rate_per_second": null, "eta_seconds": null, "eta_low": null, "eta_high": null,
    }))
    .unwrap()
}

fn event(id: i64, at: i64, sub: Option<i64>, from: Option<Status>, to: Status) -> EventRow {
    EventRow {
        event_id: id,
        time: t(at),
        run_id: RUN.into(),
        stage_name: "ingest".into(),
        task_name: "download".into(),
        subtask_number: sub,
        kind: if sub.is_some() { "subtask" } else { "run" }.into(),
        old_status: from,
        new_status: to,
        message: Some(format!("event {id}")),
    }
}

fn trace_of(status: Status) -> RunTrace {
    RunTrace {
        run: run(status),
        subtasks: vec![
            subtask(1, Status::Completed, 10, Some(10)),
            subtask(2, Status::Failed, 3, Some(5)),
        ],
        events: vec![
            event(1, 0, None, None, Status::Started),
            event(2, 1, Some(1), None, Status::Running),
            event(3, 3, Some(1), Some(Status::Running), Status::Completed),
            event(4, 10, None, Some(Status::Running), status),
        ],
    }
}

fn resource() -> ResourceInfo {
    ResourceInfo {
        service_name: "etl".into(),
        attributes: vec![("deployment.environment".into(), "test".into())],
    }
}

fn attr<'a>(attrs: &'a [opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> &'a Value {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .unwrap_or_else(|| panic!("no attribute {key}"))
}

fn spans(status: Status) -> Vec<Span> {
    let req = request(&[trace_of(status)], &resource(), t(100));
    assert_eq!(req.resource_spans.len(), 1);
    req.resource_spans[0].scope_spans[0].spans.clone()
}

#[test]
fn a_run_is_a_root_span_with_its_subtasks_as_children() {
    let spans = spans(Status::Completed);
    assert_eq!(spans.len(), 3);
    let trace = trace_id(RUN).unwrap();
    assert_eq!(
        trace.to_vec(),
        uuid::Uuid::parse_str(RUN).unwrap().as_bytes().to_vec()
    );
    let root = &spans[0];
    assert_eq!(root.name, "ingest/download");
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.span_id, span_id(&trace, None).to_vec());
    for child in &spans[1..] {
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id, root.span_id);
        assert_ne!(child.span_id, root.span_id);
    }
    assert_ne!(spans[1].span_id, spans[2].span_id);
    assert_eq!(spans[1].name, "part 1");
    assert_eq!(root.start_time_unix_nano, 1_700_000_000 * 1_000_000_000);
    assert_eq!(root.end_time_unix_nano, 1_700_000_010 * 1_000_000_000);
}

#[test]
fn exporting_again_gives_the_same_ids() {
    assert_eq!(spans(Status::Completed), spans(Status::Completed));
    let other = "0190f5a2-7c4e-7b3a-9d2f-1a2b3c4d5e70";
    let a = trace_id(RUN).unwrap();
    let b = trace_id(other).unwrap();
    assert_ne!(span_id(&a, None), span_id(&b, None));
    assert_eq!(trace_id("not a uuid"), None);
}

#[test]
fn transitions_are_events_on_the_span_they_concern() {
    let spans = spans(Status::Completed);
    let names = |s: &Span| s.events.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&spans[0]), ["STARTED", "COMPLETED"]);
    assert_eq!(names(&spans[1]), ["RUNNING", "COMPLETED"]);
    assert!(spans[2].events.is_empty());
    let done = &spans[1].events[1];
    assert_eq!(done.time_unix_nano, 1_700_000_003 * 1_000_000_000);
    assert_eq!(
        attr(&done.attributes, "tasker.message"),
        &Value::StringValue("event 3".into())
    );
    assert_eq!(
        attr(&done.attributes, "tasker.old_status"),
        &Value::StringValue("RUNNING".into())
    );
}

#[test]
fn status_maps_to_span_status() {
    let root = |s: Status| spans(s)[0].status.clone().unwrap();
    assert_eq!(root(Status::Completed).code, StatusCode::Ok as i32);
    let failed = root(Status::Failed);
    assert_eq!(failed.code, StatusCode::Error as i32);
    assert_eq!(failed.message, "disk full");
    for unset in [Status::Cancelled, Status::Skipped] {
        let all = spans(unset);
        assert_eq!(
            all[0].status.clone().unwrap().code,
            StatusCode::Unset as i32
        );
        assert_eq!(
            attr(&all[0].attributes, "tasker.status"),
            &Value::StringValue(unset.as_str().into())
        );
    }
    // The failed subtask is an error; its completed sibling OK.
    let all = spans(Status::Completed);
    assert_eq!(all[1].status.clone().unwrap().code, StatusCode::Ok as i32);
    assert_eq!(
        all[2].status.clone().unwrap().code,
        StatusCode::Error as i32
    );

    let mut lost = trace_of(Status::Running);
    lost.run.lost = true;
    lost.run.end_time = None;
    let req = request(&[lost], &resource(), t(100));
    let root = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(root.status.clone().unwrap().code, StatusCode::Error as i32);
    assert_eq!(root.status.clone().unwrap().message, "lost");
    // A lost run's span ends at its last heartbeat, not now.
    assert_eq!(root.end_time_unix_nano, 1_700_000_010 * 1_000_000_000);
}

#[test]
fn attributes_follow_the_semantic_conventions_and_count_items() {
    let req = request(&[trace_of(Status::Completed)], &resource(), t(100));
    let res = req.resource_spans[0].resource.clone().unwrap().attributes;
    assert_eq!(
        attr(&res, "service.name"),
        &Value::StringValue("etl".into())
    );
    assert_eq!(attr(&res, "host.name"), &Value::StringValue("node7".into()));
    assert_eq!(attr(&res, "process.pid"), &Value::IntValue(4242));
    assert_eq!(
        attr(&res, "deployment.environment"),
        &Value::StringValue("test".into())
    );
    let root = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        attr(&root.attributes, "tasker.stage"),
        &Value::StringValue("ingest".into())
    );
    assert_eq!(
        attr(&root.attributes, "tasker.task"),
        &Value::StringValue("download".into())
    );
    assert_eq!(
        attr(&root.attributes, "tasker.run_id"),
        &Value::StringValue(RUN.into())
    );
    assert_eq!(
        attr(&root.attributes, "tasker.items.done"),
        &Value::IntValue(13)
    );
    assert_eq!(
        attr(&root.attributes, "tasker.items.total"),
        &Value::IntValue(15)
    );
    assert_eq!(
        attr(&root.attributes, "vcs.ref.head.revision"),
        &Value::StringValue("abc123".into())
    );
}

#[test]
fn runs_of_different_processes_get_their_own_resource() {
    let a = trace_of(Status::Completed);
    let mut b = trace_of(Status::Completed);
    b.run.run_id = Some("0190f5a2-7c4e-7b3a-9d2f-1a2b3c4d5e70".into());
    let mut c = b.clone();
    c.run.process_id = Some(1);
    let req = request(&[a, b, c], &resource(), t(100));
    assert_eq!(req.resource_spans.len(), 2);
    assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 6);
}

#[test]
fn the_json_encoding_is_the_specifications() {
    let v = traces_json(&[trace_of(Status::Failed)], &resource());
    let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
    assert_eq!(span["traceId"], serde_json::json!(RUN.replace('-', "")));
    assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(
        span["parentSpanId"],
        v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
    );
    assert_eq!(
        span["startTimeUnixNano"],
        serde_json::json!("1700000001000000000")
    );
    let items = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "tasker.items.done")
        .unwrap();
    assert_eq!(items["value"], serde_json::json!({"intValue": "10"}));
}

fn ended(run: &str, run_ended: bool) -> Ended {
    Ended {
        run: Arc::from(run),
        run_ended,
    }
}

#[test]
fn the_queue_is_bounded_dropping_the_oldest_and_keeps_order_on_put_back() {
    let mut q = Pending::default();
    for i in 0..MAX_QUEUED_RUNS + 3 {
        q.push_back(ended(&i.to_string(), true));
    }
    assert_eq!((q.ends.len(), q.dropped), (MAX_QUEUED_RUNS, 3));
    assert_eq!(&*q.ends[0].run, "3");
    let batch = q.take(2, false);
    assert_eq!(
        batch.iter().map(|e| &*e.run).collect::<Vec<_>>(),
        ["3", "4"]
    );
    q.put_back(batch);
    assert_eq!(&*q.ends[0].run, "3");
    assert_eq!(q.ends.len(), MAX_QUEUED_RUNS);
}

#[test]
fn subtask_ends_wait_for_company_unless_a_run_ended_or_closing() {
    let mut q = Pending {
        subtasks_since: Some(Instant::now()),
        ..Pending::default()
    };
    q.push_back(ended(RUN, false));
    assert!(q.take(10, false).is_empty(), "a lone subtask end waits");
    assert_eq!(q.take(10, true).len(), 1, "closing sends it");
    q.subtasks_since = Some(Instant::now());
    q.push_back(ended(RUN, false));
    q.push_back(ended("other", true));
    assert_eq!(q.take(10, false).len(), 2, "a run end takes it along");
    q.subtasks_since = Some(Instant::now() - SUBTASK_BATCH_DELAY);
    q.push_back(ended(RUN, false));
    assert_eq!(q.take(10, false).len(), 1, "waited long enough");
    let runs = distinct_runs(&[ended(RUN, false), ended("b", false), ended(RUN, true)]);
    assert_eq!(
        runs.iter().map(|(r, e)| (&**r, *e)).collect::<Vec<_>>(),
        [(RUN, true), ("b", false)]
    );
}

/// A collector on a local port: each request's decoded body goes to the channel.
fn collector() -> (
    OtlpConfig,
    std::sync::mpsc::Receiver<ExportTraceServiceRequest>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            if tx
                .send(ExportTraceServiceRequest::decode(&body[..]).unwrap())
                .is_err()
            {
                return;
            }
        }
    });
    let env = [(
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
        format!("http://127.0.0.1:{port}"),
    )];
    let c = OtlpConfig::from_vars(&env.into_iter().collect())
        .unwrap()
        .unwrap();
    (c, rx)
}

fn span_names(req: &ExportTraceServiceRequest) -> Vec<String> {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn a_subtask_span_goes_when_it_ends_and_is_not_sent_again_with_its_run() {
    let (c, received) = collector();
    let x = Exporter::new(&c);
    let run_id: Arc<str> = Arc::from(RUN);
    let mut trace = trace_of(Status::Running);
    trace.subtasks[1].status = Status::Running;
    trace.subtasks[1].end_time = None;
    // Subtask 1 ended: only its span goes (no run span: the run is still going).
    x.subtask_ended(&run_id);
    x.subtask_ended(&run_id);
    assert_eq!(
        x.queued(),
        (1, 0),
        "one read finds every subtask that ended"
    );
    x.export(true, |_| Ok(vec![trace.clone()]));
    let first = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(span_names(&first), ["part 1"]);
    let child = &first.resource_spans[0].scope_spans[0].spans[0];
    let root = span_id(&trace_id(RUN).unwrap(), None);
    assert_eq!(child.parent_span_id, root.to_vec());
    // Nothing new ended: nothing is sent.
    x.subtask_ended(&run_id);
    x.export(true, |_| Ok(vec![trace.clone()]));
    // The run ends (and with it subtask 2): the run and subtask 2 go, not subtask 1.
    let done = trace_of(Status::Completed);
    x.run_ended(&run_id);
    x.export(false, |_| Ok(vec![done.clone()]));
    let second = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(span_names(&second), ["ingest/download", "part 2"]);
    // A subtask reset and ended again, later, is sent again (an update).
    let mut again = done.clone();
    again.subtasks[0].end_time = Some(t(50));
    x.subtask_ended(&run_id);
    x.export(true, |_| Ok(vec![again.clone()]));
    let third = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(span_names(&third), ["part 1", "part 2"]);
}

#[test]
fn a_collector_that_is_down_keeps_the_runs_and_waits_before_trying_again() {
    // A port nothing listens on: connection refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = OtlpConfig::from_vars(
        &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            format!("http://127.0.0.1:{port}"),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap()
    .unwrap();
    let x = Exporter::new(&c);
    x.run_ended(&Arc::from(RUN));
    let mut reads = 0;
    x.export(false, |ids| {
        reads += 1;
        assert_eq!(ids.len(), 1);
        Ok(vec![trace_of(Status::Completed)])
    });
    assert_eq!(reads, 1);
    assert_eq!(x.queued(), (1, 0));
    // In backoff: not even read.
    x.export(false, |_| {
        reads += 1;
        Ok(Vec::new())
    });
    assert_eq!(reads, 1);
    assert_eq!(x.queued(), (1, 0));
}
