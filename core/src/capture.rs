//! What a run records about how it was started, by itself, unless the caller
//! gave it: the command line, the program (for a native program: the executable;
//! bindings pass the script and their runtime), and the commit of the git
//! repository holding the script, with whether it had local changes.
//!
//! Nothing here may fail a `task_start`: anything that cannot be found stays
//! empty. The repository is read once per directory per process (a pipeline
//! starts many runs from one script); `git` runs with a deadline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::model::RunOptions;
use crate::sync::lock;

/// How long `git status` may take before the dirty flag is left unknown.
const GIT_DEADLINE: Duration = Duration::from_secs(2);

/// Fills what the caller left unset.
pub(crate) fn fill(o: &mut RunOptions) {
    if o.command_line.is_none() {
        o.command_line = command_line();
    }
    // A binding names its runtime and passes its script; a native program is its
    // own executable.
    if o.runtime.is_none() && o.script_path.is_none() {
        o.script_path = std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string());
    }
    if o.git_commit.is_none() {
        let dir = o
            .script_path
            .as_deref()
            .map(Path::new)
            .and_then(|p| p.parent())
            .filter(|d| d.is_dir())
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok());
        if let Some((commit, dirty)) = dir.and_then(|d| repository_state(&d)) {
            o.git_commit = Some(commit);
            if o.git_dirty.is_none() {
                o.git_dirty = dirty;
            }
        }
    }
}

/// This process's command line, arguments separated by spaces (quoted when they
/// hold spaces), from /proc; `None` elsewhere.
fn command_line() -> Option<String> {
    let raw = std::fs::read("/proc/self/cmdline").ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let s = String::from_utf8_lossy(a).into_owned();
            if s.contains([' ', '\t', '"', '\'']) {
                format!("{s:?}")
            } else {
                s
            }
        })
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

type State = Option<(String, Option<bool>)>;

/// The commit checked out in the repository holding `dir`, and whether its
/// working tree differs from it (`None`: git did not say in time).
fn repository_state(dir: &Path) -> State {
    static SEEN: Mutex<Option<HashMap<PathBuf, State>>> = Mutex::new(None);
    let root = find_git_dir(dir)?;
    if let Some(known) = lock(&SEEN).get_or_insert_with(HashMap::new).get(&root) {
        return known.clone();
    }
    let state = head_commit(&root).map(|c| (c, working_tree_dirty(dir)));
    lock(&SEEN)
        .get_or_insert_with(HashMap::new)
        .insert(root, state.clone());
    state
}

/// The `.git` directory of the repository holding `dir`.
fn find_git_dir(dir: &Path) -> Option<PathBuf> {
    let mut d = dir.canonicalize().ok()?;
    loop {
        let git = d.join(".git");
        if git.is_dir() {
            return Some(git);
        }
        if git.is_file() {
            // A worktree or submodule: "gitdir: <path>".
            let text = std::fs::read_to_string(&git).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            return Some(d.join(target));
        }
        if !d.pop() {
            return None;
        }
    }
}

/// Reads HEAD without running git: a detached hash, or the hash its branch names
/// (loose ref, else `packed-refs`).
fn head_commit(git_dir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_hash(head).then(|| head.to_string());
    };
    // A worktree keeps its HEAD but shares refs with the main repository.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.to_path_buf());
    for base in [git_dir, common.as_path()] {
        if let Ok(hash) = std::fs::read_to_string(base.join(reference)) {
            let hash = hash.trim();
            if is_hash(hash) {
                return Some(hash.to_string());
            }
        }
        if let Ok(packed) = std::fs::read_to_string(base.join("packed-refs")) {
            let found = packed.lines().find_map(|l| {
                let (hash, name) = l.split_once(' ')?;
                (name == reference && is_hash(hash)).then(|| hash.to_string())
            });
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

fn is_hash(s: &str) -> bool {
    (40..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether tracked files differ from HEAD (`git status`), or `None` when git is
/// missing, fails or takes longer than the deadline.
fn working_tree_dirty(dir: &Path) -> Option<bool> {
    let child = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let (done, answer) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name("tasker-git".into());
    crate::ffi::os::with_signals_blocked(|| {
        thread.spawn(move || {
            let _ = done.send(child.wait_with_output());
        })
    })
    .ok()?;
    match answer.recv_timeout(GIT_DEADLINE) {
        Ok(Ok(out)) if out.status.success() => Some(!out.stdout.is_empty()),
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> bool {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    #[test]
    fn a_repository_commit_and_its_dirty_flag_are_read() {
        let repo = tempfile::tempdir().unwrap();
        if !git(repo.path(), &["init", "-q"]) {
            eprintln!("git is not installed: skipped");
            return;
        }
        std::fs::write(repo.path().join("job.R"), "1\n").unwrap();
        assert!(git(repo.path(), &["add", "job.R"]));
        assert!(git(repo.path(), &["commit", "-qm", "first"]));
        let script = repo.path().join("job.R").display().to_string();
        let mut o = RunOptions {
            script_path: Some(script.clone()),
            runtime: Some("R 4.2.2".into()),
            ..RunOptions::default()
        };
        fill(&mut o);
        let commit = o.git_commit.clone().unwrap();
        assert_eq!(commit.len(), 40);
        assert_eq!(o.git_dirty, Some(false));
        assert_eq!(o.script_path.as_deref(), Some(script.as_str()));
        assert!(o.command_line.is_some());
        // Packed refs are read too.
        assert!(git(repo.path(), &["pack-refs", "--all"]));
        let git_dir = find_git_dir(repo.path()).unwrap();
        assert_eq!(head_commit(&git_dir).as_deref(), Some(commit.as_str()));
        // A change to a tracked file: dirty (a new directory: not cached yet).
        std::fs::write(repo.path().join("job.R"), "2\n").unwrap();
        assert_eq!(working_tree_dirty(repo.path()), Some(true));
    }

    #[test]
    fn outside_any_repository_nothing_is_filled_and_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = RunOptions {
            script_path: Some(dir.path().join("x.py").display().to_string()),
            runtime: Some("Python 3.11".into()),
            ..RunOptions::default()
        };
        fill(&mut o);
        assert_eq!((o.git_commit, o.git_dirty), (None, None));
        // A native program records its executable.
        let mut native = RunOptions::default();
        fill(&mut native);
        assert!(native.script_path.is_some());
    }
}
