//! Writes that could not reach the database yet, kept in order until it is back.
//!
//! The queue is a list of segments, oldest first: spool files (this process's,
//! and those left by processes that exited during an outage) and, at the back,
//! writes in memory. Memory spills to a new spool file (JSON lines under
//! `$XDG_STATE_HOME/tasker/spool/`) past a bound and when the process asks for
//! durability; a spool file is read a batch at a time and deleted once applied.
//!
//! A spool file is never trusted: a line that is not a complete, readable write
//! (torn by a crash, cut inside a UTF-8 character, garbage, written by a newer
//! version) is moved aside to `<file>.bad` with one warning naming the file, and
//! the rest is replayed. Nothing in a spool file can keep a tracker in outage.
//! Writes carry their ids (`OpId`), so a file replayed twice (its adopter died
//! half-way) applies each write once.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::store::{Op, OpId, Queued};

/// Writes kept in memory before the rest goes to a spool file.
pub(crate) const MEMORY_BOUND: usize = 10_000;

/// The spool format written by this version (first line of every file).
const SPOOL_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Header {
    tasker_spool: u32,
}

/// Spool files held by a live outbox of this process (never adopted by another).
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn hold(path: &Path) {
    crate::sync::lock(&HELD).push(path.to_path_buf());
}

fn release(path: &Path) {
    crate::sync::lock(&HELD).retain(|p| p != path);
}

/// A spool file being replayed: read a batch at a time.
#[derive(Debug)]
struct SpoolFile {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    /// Read and parsed, not yet applied.
    loaded: VecDeque<Queued>,
    /// Lines not read yet (an estimate for `len`; exact for files written here).
    unread: usize,
    /// Legacy files (no header) hold bare ops without ids.
    legacy: bool,
    bad: BadLines,
}

/// Unreadable lines of one spool file, moved aside.
#[derive(Debug, Default)]
struct BadLines {
    count: usize,
    file: Option<File>,
}

#[derive(Debug)]
enum Segment {
    File(SpoolFile),
    Memory(VecDeque<Queued>),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::File(f) => f.loaded.len() + f.unread,
            Segment::Memory(m) => m.len(),
        }
    }
}

/// The queue of one process for one database.
#[derive(Debug)]
pub(crate) struct Outbox {
    segments: VecDeque<Segment>,
    spool_dir: PathBuf,
    /// Identifies the database in spool file names (no secrets).
    key: String,
}

impl Outbox {
    pub(crate) fn new(spool_dir: PathBuf, key: String) -> Outbox {
        Outbox {
            segments: VecDeque::new(),
            spool_dir,
            key,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.len() == 0)
    }

    pub(crate) fn len(&self) -> usize {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Of `len`, how many wait in spool files.
    pub(crate) fn spooled(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::File(_)))
            .map(Segment::len)
            .sum()
    }

    fn memory_len(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Memory(_)))
            .map(Segment::len)
            .sum()
    }

    /// Adds a write at the back.
    pub(crate) fn push(&mut self, q: Queued) {
        match self.segments.back_mut() {
            Some(Segment::Memory(m)) => m.push_back(q),
            _ => self
                .segments
                .push_back(Segment::Memory(VecDeque::from([q]))),
        }
        if self.memory_len() > MEMORY_BOUND {
            if let Err(e) = self.spill() {
                log::warn!(
                    "tasker: cannot write the spool file ({e}); keeping pending writes in memory"
                );
            }
        }
    }

    /// Moves every write held in memory to spool files, keeping the order.
    pub(crate) fn spill(&mut self) -> std::io::Result<()> {
        for i in 0..self.segments.len() {
            let Segment::Memory(m) = &self.segments[i] else {
                continue;
            };
            if m.is_empty() {
                continue;
            }
            let file = self.write_spool(m)?;
            self.segments[i] = Segment::File(file);
        }
        self.segments.retain(|s| s.len() > 0);
        Ok(())
    }

    fn write_spool(&self, writes: &VecDeque<Queued>) -> std::io::Result<SpoolFile> {
        std::fs::create_dir_all(&self.spool_dir)?;
        let name = format!(
            "{}.{}.{}.jsonl",
            self.key,
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let path = self.spool_dir.join(name);
        let mut buf = serde_json::to_string(&Header {
            tasker_spool: SPOOL_VERSION,
        })
        .map_err(std::io::Error::other)?;
        buf.push('\n');
        for q in writes {
            buf += &serde_json::to_string(q).map_err(std::io::Error::other)?;
            buf.push('\n');
        }
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        f.write_all(buf.as_bytes())?;
        f.sync_data()?;
        hold(&path);
        let mut spool = SpoolFile::open(path)?;
        spool.unread = writes.len();
        Ok(spool)
    }

    /// Up to `max` writes from the front, in order (a batch never spans segments).
    pub(crate) fn peek(&mut self, max: usize) -> Vec<Queued> {
        loop {
            let Some(front) = self.segments.front_mut() else {
                return Vec::new();
            };
            let batch: Vec<Queued> = match front {
                Segment::Memory(m) => m.iter().take(max).cloned().collect(),
                Segment::File(f) => {
                    f.fill(max);
                    f.loaded.iter().take(max).cloned().collect()
                }
            };
            if !batch.is_empty() {
                return batch;
            }
            self.drop_front();
        }
    }

    /// Removes the `n` writes `peek` gave, once applied.
    pub(crate) fn pop(&mut self, n: usize) {
        if let Some(front) = self.segments.front_mut() {
            match front {
                Segment::Memory(m) => drop(m.drain(..n.min(m.len()))),
                Segment::File(f) => drop(f.loaded.drain(..n.min(f.loaded.len()))),
            }
            if front.len() == 0 {
                self.drop_front();
            }
        }
    }

    fn drop_front(&mut self) {
        if let Some(Segment::File(f)) = self.segments.pop_front() {
            f.finish();
        }
    }

    /// Takes over the spool files other processes of this host left for this
    /// database (their process is gone), oldest first, ahead of anything queued
    /// here. Returns how many writes they hold.
    pub(crate) fn adopt_orphans(&mut self) -> usize {
        let found = Orphans::claim(&self.spool_dir, &self.key);
        self.adopt(found)
    }

    /// Puts claimed orphan files at the front of the queue.
    pub(crate) fn adopt(&mut self, found: Orphans) -> usize {
        let n: usize = found.files.iter().map(|f| f.unread).sum();
        for f in found.files.into_iter().rev() {
            self.segments.push_front(Segment::File(f));
        }
        if n > 0 {
            log::warn!(
                "tasker: replaying {n} writes left by a process that exited during an outage"
            );
        }
        n
    }

    pub(crate) fn spool_dir(&self) -> &Path {
        &self.spool_dir
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// Spool files of processes that are gone, claimed by this one (found without
/// holding the queue: it reads directories and files).
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    files: Vec<SpoolFile>,
}

impl Orphans {
    pub(crate) fn claim(spool_dir: &Path, key: &str) -> Orphans {
        let Ok(entries) = std::fs::read_dir(spool_dir) else {
            return Orphans::default();
        };
        let held: HashSet<PathBuf> = crate::sync::lock(&HELD).iter().cloned().collect();
        let prefix = format!("{key}.");
        let me = std::process::id();
        let mut found: Vec<(u128, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !held.contains(p))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                let rest = name.strip_prefix(&prefix)?.strip_suffix(".jsonl")?;
                let (pid, stamp) = rest.split_once('.')?;
                let pid: u32 = pid.parse().ok()?;
                // This process's own files that no live outbox holds (a tracker
                // closed earlier) are orphans too.
                let gone = pid == me || !crate::process::is_alive(pid, None).unwrap_or(true);
                gone.then(|| (stamp.parse().unwrap_or(0), p))
            })
            .collect();
        found.sort();
        let mut files = Vec::new();
        for (stamp, path) in found {
            // Claimed under this process's id first, so that two processes never
            // replay one file, and a claimer that dies leaves it to the next.
            let claimed = spool_dir.join(format!("{key}.{me}.{stamp}.jsonl"));
            if claimed != path && std::fs::rename(&path, &claimed).is_err() {
                continue;
            }
            hold(&claimed);
            match SpoolFile::open(claimed.clone()) {
                Ok(mut f) => {
                    f.count_lines();
                    files.push(f);
                }
                Err(e) => {
                    release(&claimed);
                    log::warn!("tasker: cannot read spool file {}: {e}", claimed.display());
                }
            }
        }
        Orphans { files }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        for s in &self.segments {
            if let Segment::File(f) = s {
                release(&f.path);
            }
        }
    }
}

impl SpoolFile {
    fn open(path: PathBuf) -> std::io::Result<SpoolFile> {
        let mut reader = BufReader::new(File::open(&path)?);
        let mut legacy = true;
        let mut first = Vec::new();
        reader.read_until(b'\n', &mut first)?;
        let mut file = SpoolFile {
            path,
            reader: None,
            loaded: VecDeque::new(),
            unread: 0,
            legacy: true,
            bad: BadLines::default(),
        };
        match serde_json::from_slice::<Header>(&first) {
            Ok(h) if h.tasker_spool <= SPOOL_VERSION => legacy = false,
            Ok(h) => {
                file.set_aside(&format!(
                    "it was written by a newer tasker (spool format {})",
                    h.tasker_spool
                ));
                return Ok(file);
            }
            // No header: a file of the first version, whose first line is a write.
            Err(_) => file.parse_line(&first),
        }
        file.legacy = legacy;
        file.reader = Some(reader);
        Ok(file)
    }

    /// Counts the lines still to read (for files written by other processes).
    fn count_lines(&mut self) {
        if let Ok(bytes) = std::fs::read(&self.path) {
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            let header = usize::from(!self.legacy);
            self.unread = lines.saturating_sub(header + self.loaded.len());
        }
    }

    /// Reads lines until `max` writes are loaded or the file ends.
    fn fill(&mut self, max: usize) {
        let mut line = Vec::new();
        while self.loaded.len() < max {
            let Some(reader) = self.reader.as_mut() else {
                break;
            };
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    self.reader = None;
                    self.unread = 0;
                }
                Ok(_) => {
                    self.unread = self.unread.saturating_sub(1);
                    let taken = std::mem::take(&mut line);
                    self.parse_line(&taken);
                }
                Err(e) => {
                    self.reader = None;
                    self.unread = 0;
                    self.set_aside(&format!("it cannot be read to the end ({e})"));
                }
            }
        }
    }

    /// Parses one line into a write, or moves it aside.
    fn parse_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // A line without its newline was cut short by a crash mid-write.
        let complete = line.ends_with(b"\n");
        let parsed = complete
            .then(|| std::str::from_utf8(line).ok())
            .flatten()
            .and_then(|text| {
                if self.legacy {
                    parse_legacy(text)
                } else {
                    serde_json::from_str::<Queued>(text).ok()
                }
            });
        match parsed {
            Some(q) => self.loaded.push_back(q),
            None => self.bad.keep(&self.path, line),
        }
    }

    /// Moves the whole file aside (it cannot be replayed by this version).
    fn set_aside(&mut self, why: &str) {
        let aside = with_suffix(&self.path, "bad");
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => log::warn!(
                "tasker: spool file {} is not replayed: {why}; moved to {}",
                self.path.display(),
                aside.display()
            ),
            Err(e) => log::warn!(
                "tasker: spool file {} is not replayed: {why} (and cannot be moved aside: {e})",
                self.path.display()
            ),
        }
        release(&self.path);
        self.reader = None;
        self.unread = 0;
    }

    /// Deletes a file whose writes were all applied.
    fn finish(self) {
        if self.path.exists() {
            let _ = std::fs::remove_file(&self.path);
        }
        release(&self.path);
        if self.bad.count > 0 {
            log::warn!(
                "tasker: spool file {}: {} unreadable line(s) moved to {}; the rest was replayed",
                self.path.display(),
                self.bad.count,
                with_suffix(&self.path, "bad").display()
            );
        }
    }
}

impl BadLines {
    fn keep(&mut self, spool: &Path, line: &[u8]) {
        self.count += 1;
        if self.file.is_none() {
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(with_suffix(spool, "bad"))
                .ok();
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.write_all(line);
            if !line.ends_with(b"\n") {
                let _ = f.write_all(b"\n");
            }
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// A line of a first-version spool file: a bare op, whose progress batches
/// carried their id inside (`batch_id`).
fn parse_legacy(text: &str) -> Option<Queued> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value
        .get("Progress")
        .and_then(|p| p.get("batch_id"))
        .and_then(|b| serde_json::from_value::<OpId>(b.clone()).ok());
    let op: Op = serde_json::from_value(value).ok()?;
    Some(Queued { id, op })
}

/// A short, stable, secret-free name for a database location.
pub(crate) fn location_key(identity: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::store::ProgressUpdate;
    use std::sync::Arc;

    fn write(seq: u64, delta: u64) -> Queued {
        Queued {
            id: Some(OpId {
                writer: Arc::from("w"),
                seq,
            }),
            op: Op::Progress {
                updates: vec![ProgressUpdate {
                    run_id: Arc::from("r"),
                    subtask: Some(1),
                    items_delta: delta,
                    ..ProgressUpdate::default()
                }],
                heartbeats: vec![],
                samples: vec![],
                logs: Default::default(),
                at: Utc::now(),
            },
        }
    }

    fn drain(o: &mut Outbox) -> Vec<u64> {
        let mut seqs = Vec::new();
        loop {
            let batch = o.peek(3);
            if batch.is_empty() {
                return seqs;
            }
            seqs.extend(batch.iter().map(|q| q.id.as_ref().unwrap().seq));
            o.pop(batch.len());
        }
    }

    #[test]
    fn writes_come_back_in_order_across_memory_and_spool_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::new(dir.path().to_path_buf(), "k".into());
        for s in 1..=4 {
            o.push(write(s, 1));
        }
        o.spill().unwrap();
        for s in 5..=7 {
            o.push(write(s, 1));
        }
        assert_eq!((o.len(), o.spooled()), (7, 4));
        assert_eq!(drain(&mut o), (1..=7).collect::<Vec<_>>());
        assert!(o.is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "files deleted"
        );
    }

    #[test]
    fn bad_lines_are_moved_aside_and_the_rest_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.1.1.jsonl");
        let good = |s| serde_json::to_string(&write(s, 1)).unwrap();
        let mut bytes = b"{\"tasker_spool\":2}\n".to_vec();
        bytes.extend(format!("{}\n", good(1)).as_bytes());
        bytes.extend(b"\xff\xfe garbage\n");
        let cut = good(2);
        bytes.extend(&cut.as_bytes()[..cut.len() / 2]);
        bytes.extend(b"\xe2\x82\n"); // cut inside a UTF-8 character
        bytes.extend(format!("{}\n", good(3)).as_bytes());
        bytes.extend(b"{\"NewKindOfWrite\":{}}\n");
        bytes.extend(&good(4).as_bytes()[..10]); // torn last line
        std::fs::write(&path, &bytes).unwrap();
        let mut f = SpoolFile::open(path.clone()).unwrap();
        f.fill(100);
        let seqs: Vec<u64> = f
            .loaded
            .iter()
            .map(|q| q.id.as_ref().unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 3]);
        assert_eq!(f.bad.count, 4);
        f.finish();
        assert!(!path.exists());
        let aside = std::fs::read(with_suffix(&path, "bad")).unwrap();
        assert_eq!(aside.iter().filter(|b| **b == b'\n').count(), 4);
    }

    #[test]
    fn a_file_from_a_newer_version_is_set_aside_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.1.1.jsonl");
        std::fs::write(&path, "{\"tasker_spool\":99}\n{\"whatever\":1}\n").unwrap();
        let mut f = SpoolFile::open(path.clone()).unwrap();
        f.fill(10);
        assert!(f.loaded.is_empty());
        assert!(!path.exists() && with_suffix(&path, "bad").exists());
    }

    #[test]
    fn first_version_files_are_read_with_their_batch_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.1.1.jsonl");
        let line = r#"{"Progress":{"updates":[{"run_id":"r","subtask":1,"items_set":null,"items_delta":5,"items_total":null,"percent":null,"message":null,"current_subtask":null}],"at":"2026-01-01T00:00:00Z","batch_id":{"writer":"old","seq":7}}}"#;
        let transition = r#"{"SubtaskTransition":{"run_id":"r","number":2,"to":"COMPLETED","info":{"message":null,"error_message":null,"error_detail":null,"reset":false},"at":"2026-01-01T00:00:01Z"}}"#;
        std::fs::write(&path, format!("{line}\n{transition}\n")).unwrap();
        let mut f = SpoolFile::open(path).unwrap();
        f.fill(10);
        assert_eq!(f.loaded.len(), 2);
        assert_eq!(f.loaded[0].id.as_ref().map(|i| i.seq), Some(7));
        match &f.loaded[1].op {
            Op::SubtaskTransition { subtask, .. } => assert_eq!(subtask.number, 2),
            other => panic!("{other:?}"),
        }
    }
}
