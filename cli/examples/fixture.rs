//! Writes tracking data through the core API from its own process, for the CLI
//! tests and benchmark (other processes and hosts do the same in real life).
//!
//!   tasker-fixture populate URL            a small pipeline: completed, failed, active runs
//!   tasker-fixture start URL STAGE TASK N  starts a run with one subtask of N items, prints
//!                                          {"run_id": ..., "subtask": 1}, then holds the run
//!                                          open until stdin says `complete`, `fail` or closes
//!   tasker-fixture increment URL RUN SUBTASK K   adds K items from this process
//!   tasker-fixture log URL RUN LEVEL MESSAGE     logs one line on the run
//!   tasker-fixture item-failed URL RUN SUBTASK KEY ERROR   records a failed item
//!   tasker-fixture register URL JSON       registers a JSON array of tasks (with depends_on)

use std::io::BufRead;

use tasker::{RunOptions, SubtaskOptions, SubtaskProgress, TaskSpec, Tracker};

fn open(url: &str) -> Tracker {
    Tracker::connect(&tasker::ConfigArgs::url(url)).unwrap_or_else(|e| {
        eprintln!("tasker-fixture: cannot open {url}: {e}");
        std::process::exit(1)
    })
}

fn main() -> Result<(), tasker::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("usage: see the top of cli/examples/fixture.rs");
            std::process::exit(2)
        })
    };
    match arg(0) {
        "populate" => populate(&open(arg(1))),
        "start" => {
            let t = open(arg(1));
            let items: u64 = arg(4).parse().expect("N items");
            let run = t.task_start(
                arg(2),
                arg(3),
                RunOptions {
                    total_subtasks: Some(1),
                    message: Some("started by tasker-fixture".into()),
                    // The dashboard's log tail reads the file a run names.
                    log_path: std::env::var("TASKER_FIXTURE_LOG_PATH").ok(),
                    ..RunOptions::default()
                },
            )?;
            let n = run.subtask_start(
                "items",
                SubtaskOptions {
                    items_total: Some(items),
                    ..SubtaskOptions::default()
                },
            )?;
            println!("{{\"run_id\": \"{}\", \"subtask\": {n}}}", run.run_id());
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            match line.trim() {
                "fail" => {
                    run.subtask_fail(
                        n,
                        "the subtask broke",
                        Some("subtask detail <b>stays text</b>"),
                    )?;
                    run.fail(
                        "stopped by the test",
                        Some("tasker-fixture was told to fail"),
                    )?;
                }
                _ => {
                    run.subtask_complete(n, None)?;
                    run.complete(Some("done"))?;
                }
            }
            t.close()
        }
        "increment" => {
            let t = open(arg(1));
            let run = t.attach_run(arg(2))?;
            let n: u32 = arg(3).parse().expect("subtask number");
            let k: u64 = arg(4).parse().expect("items");
            run.subtask_increment(n, k)?;
            t.close()
        }
        // log DB RUN LEVEL MESSAGE: one log line from this process.
        "log" => {
            let t = open(arg(1));
            let run = t.attach_run(arg(2))?;
            let level: tasker::LogLevel = arg(3).parse()?;
            run.log(level, arg(4), None)?;
            t.close()
        }
        // item-failed DB RUN SUBTASK KEY ERROR
        "item-failed" => {
            let t = open(arg(1));
            let run = t.attach_run(arg(2))?;
            let n: u32 = arg(3).parse().expect("subtask number");
            run.item_failed(n, arg(4), arg(5))?;
            t.close()
        }
        // register <url> <json>: a JSON array of task specs (with depends_on).
        "register" => {
            let t = open(arg(1));
            let specs: Vec<TaskSpec> = serde_json::from_str(arg(2)).expect("a JSON task list");
            t.register_tasks(&specs)?;
            t.close()
        }
        other => {
            eprintln!("tasker-fixture: unknown command {other:?}");
            std::process::exit(2)
        }
    }
}

fn populate(t: &Tracker) -> Result<(), tasker::Error> {
    let specs = [
        ("prepare", 1, "download", 1, Some("scripts/download.R")),
        ("prepare", 1, "validate", 2, None),
        ("model", 2, "fit", 1, Some("scripts/fit.py")),
        ("model", 2, "score", 2, None),
        ("publish", 3, "upload", 1, None),
    ];
    let tasks: Vec<TaskSpec> = specs
        .iter()
        .map(|(stage, so, name, to, script)| TaskSpec {
            stage_order: Some(*so),
            task_order: Some(*to),
            script_path: script.map(str::to_string),
            task_type: Some("example".into()),
            ..TaskSpec::new(*stage, *name)
        })
        .collect();
    t.register_tasks(&tasks)?;

    // prepare/download: completed, three subtasks (one skipped).
    let run = t.task_start(
        "prepare",
        "download",
        RunOptions {
            total_subtasks: Some(3),
            version: Some("1.2.3".into()),
            metadata: Some(serde_json::json!({"source": "fixture"})),
            ..RunOptions::default()
        },
    )?;
    let a = run.subtask_start(
        "fetch files",
        SubtaskOptions {
            items_total: Some(1000),
            ..SubtaskOptions::default()
        },
    )?;
    run.subtask_increment(a, 1000)?;
    run.subtask_complete(a, Some("1000 files"))?;
    let b = run.subtask_start("checksums", SubtaskOptions::default())?;
    run.subtask_update(
        b,
        &SubtaskProgress {
            percent: Some(50.0),
            message: Some("half way".into()),
            ..SubtaskProgress::default()
        },
    )?;
    run.subtask_complete(b, None)?;
    let c = run.subtask_start("mirror", SubtaskOptions::default())?;
    run.subtask_skip(c, Some("mirror is down, skipped"))?;
    run.complete(Some("downloaded"))?;

    // prepare/validate: failed with an error detail.
    let run = t.task_start("prepare", "validate", RunOptions::default())?;
    let s = run.subtask_start(
        "check rows",
        SubtaskOptions {
            items_total: Some(500),
            ..SubtaskOptions::default()
        },
    )?;
    run.subtask_increment(s, 120)?;
    run.subtask_fail(s, "row 121: bad date '2026-13-01'", None)?;
    run.fail(
        "validation failed: 1 bad row",
        Some("Traceback (most recent call last):\n  File \"validate.py\", line 12\nValueError: month must be in 1..12"),
    )?;

    // model/fit: two runs, the latest completed.
    for i in 0..2 {
        let run = t.task_start("model", "fit", RunOptions::default())?;
        let s = run.subtask_start(
            "epochs",
            SubtaskOptions {
                items_total: Some(10),
                ..SubtaskOptions::default()
            },
        )?;
        run.subtask_increment(s, 10)?;
        run.subtask_complete(s, None)?;
        run.complete(Some(&format!("fit {i}")))?;
    }
    t.close()?;
    Ok(())
}
