//! The pipeline declared under `tasks:` in .tasker.yml: `tasker register` (and
//! `--dry-run`), registration by a program's first run start, and declarations
//! that are refused with the reason (a cycle, an unknown upstream, a typo).

use std::path::Path;
use std::process::{Command, Output};

use tasker::{Config, ConfigArgs, RunOptions, TaskSpec, Tracker};

const PIPELINE: &str = "\
database:
  path: pipeline.db
tasks:
  - stage: extract
    name: download
  - stage: transform
    name: clean
    depends_on: extract/download
  - stage: extract
    name: unzip
    depends_on: [download]
";

fn tasker(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args(args)
        .current_dir(dir)
        .env_remove("TASKER_DB_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run tasker")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config(dir: &Path) -> Config {
    Config::resolve(&ConfigArgs {
        config_file: Some(dir.join(".tasker.yml")),
        ..ConfigArgs::default()
    })
    .unwrap()
}

fn edges(t: &Tracker) -> Vec<(String, String)> {
    let mut e: Vec<_> = t
        .dag()
        .unwrap()
        .edges
        .into_iter()
        .map(|e| (e.from, e.to))
        .collect();
    e.sort();
    e
}

#[test]
fn register_dry_run_writes_nothing_then_registers_all() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tasker.yml"), PIPELINE).unwrap();
    let out = tasker(dir.path(), &["register", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("transform/clean  <- extract/download"));
    assert!(!dir.path().join("pipeline.db").exists());

    let out = tasker(dir.path(), &["register"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("registered 3 tasks"));
    let t = Tracker::open(Config::sqlite(dir.path().join("pipeline.db"))).unwrap();
    let tasks = t.registered_tasks(None, None).unwrap();
    let order: Vec<_> = tasks
        .iter()
        .map(|r| format!("{}/{}", r.stage_name, r.task_name))
        .collect();
    assert_eq!(
        order,
        ["extract/download", "extract/unzip", "transform/clean"]
    );
    assert_eq!(
        edges(&t),
        [
            ("extract/download".to_string(), "extract/unzip".to_string()),
            (
                "extract/download".to_string(),
                "transform/clean".to_string()
            ),
        ]
    );
}

#[test]
fn a_programs_first_run_registers_the_declaration_and_its_own_calls_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tasker.yml"), PIPELINE).unwrap();
    let t = Tracker::open(config(dir.path())).unwrap();
    // The program's own registration comes after the declaration: it wins.
    t.register_task(&TaskSpec {
        depends_on: Some(vec![]),
        ..TaskSpec::new("extract", "unzip")
    })
    .unwrap();
    t.task_start("transform", "clean", RunOptions::default())
        .unwrap()
        .complete(None)
        .unwrap();
    assert_eq!(t.registered_tasks(None, None).unwrap().len(), 3);
    assert_eq!(
        edges(&t),
        [(
            "extract/download".to_string(),
            "transform/clean".to_string()
        )]
    );
    assert_eq!(
        t.register_declared().unwrap(),
        0,
        "registered once per tracker"
    );
}

#[test]
fn refused_declarations_name_the_problem_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cycle = "database: {path: p.db}\ntasks:\n\
                 - {stage: a, name: x, depends_on: [a/y]}\n\
                 - {stage: a, name: y, depends_on: [a/x]}\n";
    std::fs::write(dir.path().join(".tasker.yml"), cycle).unwrap();
    let out = tasker(dir.path(), &["register"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("declared in the configuration") && err.contains("a/x"),
        "{err}"
    );
    let t = Tracker::open(config(dir.path())).unwrap();
    let e = t.task_start("a", "x", RunOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("cycle") || e.to_string().contains("a/y"),
        "{e}"
    );
    assert!(t.registered_tasks(None, None).unwrap().is_empty());

    let typo = "database: {path: p.db}\ntasks:\n- {stage: a, name: x, dependson: [y]}\n";
    std::fs::write(dir.path().join(".tasker.yml"), typo).unwrap();
    let out = tasker(dir.path(), &["register", "--dry-run"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(".tasker.yml") && err.contains("tasks[0]: unknown key dependson"),
        "{err}"
    );

    std::fs::write(dir.path().join(".tasker.yml"), "database: {path: p.db}\n").unwrap();
    let out = tasker(dir.path(), &["register"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no pipeline is declared"));
}
