//! CSV fields written straight into a (buffered) writer: no string is built per
//! field or per row, so `tasker export --format csv` costs about what reading the
//! rows does. A field is quoted when it holds a comma, a quote or a line break, or
//! starts or ends with a space (RFC 4180, quotes doubled).

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use tasker::RunRow;

/// A CSV line being written: `field` calls put the commas between fields.
pub struct Line<'a, W: Write> {
    out: &'a mut W,
    first: bool,
}

impl<'a, W: Write> Line<'a, W> {
    pub fn new(out: &'a mut W) -> Self {
        Line { out, first: true }
    }

    fn sep(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        Ok(())
    }

    pub fn text(&mut self, s: &str) -> io::Result<()> {
        self.sep()?;
        let special = s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
            || s.starts_with(' ')
            || s.ends_with(' ');
        if !special {
            return self.out.write_all(s.as_bytes());
        }
        self.out.write_all(b"\"")?;
        Quoted(self.out).write_all(s.as_bytes())?;
        self.out.write_all(b"\"")
    }

    pub fn opt_text(&mut self, s: Option<&str>) -> io::Result<()> {
        match s {
            Some(s) => self.text(s),
            None => self.empty(),
        }
    }

    pub fn empty(&mut self) -> io::Result<()> {
        self.sep()
    }

    /// A number or boolean as JSON writes it (floats keep their `.0`).
    pub fn display(&mut self, v: Option<impl JsonScalar>) -> io::Result<()> {
        self.sep()?;
        match v {
            Some(v) => v.write(self.out),
            None => Ok(()),
        }
    }

    /// A time as the JSON export writes it (RFC 3339, UTC, `Z`, sub-seconds as needed).
    pub fn time(&mut self, t: Option<DateTime<Utc>>) -> io::Result<()> {
        self.sep()?;
        match t {
            // DateTime<Utc>'s Debug is serde's form without building a String.
            Some(t) => write!(self.out, "{t:?}"),
            None => Ok(()),
        }
    }

    /// A JSON value: strings as text, numbers and booleans bare, objects and
    /// arrays as their JSON text (quoted: it holds quotes).
    pub fn json(&mut self, v: Option<&serde_json::Value>) -> io::Result<()> {
        use serde_json::Value;
        match v {
            None | Some(Value::Null) => self.empty(),
            Some(Value::String(s)) => self.text(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                self.sep()?;
                serde_json::to_writer(&mut *self.out, v).map_err(io::Error::from)
            }
            Some(v) => {
                self.sep()?;
                self.out.write_all(b"\"")?;
                serde_json::to_writer(Quoted(self.out), v).map_err(io::Error::from)?;
                self.out.write_all(b"\"")
            }
        }
    }

    pub fn end(self) -> io::Result<()> {
        self.out.write_all(b"\n")
    }
}

/// Numbers and booleans written by serde_json itself (no String on the way):
/// the CSV holds the text the JSON export does.
pub trait JsonScalar: serde::Serialize {
    fn write(self, out: &mut (impl Write + ?Sized)) -> io::Result<()>
    where
        Self: Sized,
    {
        serde_json::to_writer(out, &self).map_err(io::Error::from)
    }
}

impl JsonScalar for i64 {}
impl JsonScalar for bool {}

impl JsonScalar for f64 {
    fn write(self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        if self.is_finite() {
            serde_json::to_writer(out, &self).map_err(io::Error::from)
        } else {
            Ok(()) // serde writes null for NaN and infinities: an empty field
        }
    }
}

/// Doubles every quote written through it.
struct Quoted<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Quoted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'"') {
            self.0.write_all(&rest[..=i])?;
            self.0.write_all(b"\"")?;
            rest = &rest[i + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The columns of `export --table runs --format csv`, in [`run`]'s order.
pub const RUN_COLUMNS: &[&str] = &[
    "run_id",
    "stage_name",
    "stage_order",
    "task_name",
    "task_type",
    "task_order",
    "status",
    "lost",
    "hostname",
    "process_id",
    "parent_pid",
    "user_name",
    "start_time",
    "end_time",
    "last_update",
    "heartbeat_time",
    "duration_seconds",
    "total_subtasks",
    "subtasks_completed",
    "current_subtask",
    "overall_percent_complete",
    "overall_progress_message",
    "version",
    "git_commit",
    "script_path",
    "script_filename",
    "log_path",
    "log_filename",
    "error_message",
    "error_detail",
    "metadata",
];

/// One run as a line of [`RUN_COLUMNS`].
pub fn run(out: &mut impl Write, r: &RunRow) -> io::Result<()> {
    let mut l = Line::new(out);
    l.opt_text(r.run_id.as_deref())?;
    l.text(&r.stage_name)?;
    l.display(r.stage_order)?;
    l.text(&r.task_name)?;
    l.opt_text(r.task_type.as_deref())?;
    l.display(r.task_order)?;
    l.text(r.status.as_str())?;
    l.display(Some(r.lost))?;
    l.opt_text(r.hostname.as_deref())?;
    l.display(r.process_id)?;
    l.display(r.parent_pid)?;
    l.opt_text(r.user_name.as_deref())?;
    l.time(r.start_time)?;
    l.time(r.end_time)?;
    l.time(r.last_update)?;
    l.time(r.heartbeat_time)?;
    l.display(r.duration_seconds)?;
    l.display(r.total_subtasks)?;
    l.display(Some(r.subtasks_completed))?;
    l.display(r.current_subtask)?;
    l.display(r.overall_percent_complete)?;
    l.opt_text(r.overall_progress_message.as_deref())?;
    l.opt_text(r.version.as_deref())?;
    l.opt_text(r.git_commit.as_deref())?;
    l.opt_text(r.script_path.as_deref())?;
    l.opt_text(r.script_filename.as_deref())?;
    l.opt_text(r.log_path.as_deref())?;
    l.opt_text(r.log_filename.as_deref())?;
    l.opt_text(r.error_message.as_deref())?;
    l.opt_text(r.error_detail.as_deref())?;
    l.json(r.metadata.as_ref())?;
    l.end()
}

#[cfg(test)]
mod test {
    use super::*;

    fn line(f: impl FnOnce(&mut Line<'_, Vec<u8>>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        let mut l = Line::new(&mut out);
        f(&mut l).unwrap();
        l.end().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        let got = line(|l| {
            l.text("plain")?;
            l.text("a,b")?;
            l.text("say \"hi\"")?;
            l.text(" lead")?;
            l.text("two\nlines")?;
            l.opt_text(None)?;
            l.text("")
        });
        assert_eq!(
            got,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\" lead\",\"two\nlines\",,\n"
        );
    }

    #[test]
    fn scalars_and_times_read_as_the_json_export_writes_them() {
        let t: DateTime<Utc> = "2026-12-02T15:55:35.123456Z".parse().unwrap();
        let whole: DateTime<Utc> = "2026-12-02T15:55:35Z".parse().unwrap();
        let milli: DateTime<Utc> = "2026-12-02T15:55:35.120Z".parse().unwrap();
        for x in [t, whole, milli] {
            let json = serde_json::to_value(x).unwrap();
            assert_eq!(
                line(|l| l.time(Some(x))),
                format!("{}\n", json.as_str().unwrap())
            );
        }
        for x in [0.0, 12.0, 0.04, 1e21, 123456.789, -3.5] {
            let json = serde_json::to_string(&x).unwrap();
            assert_eq!(line(|l| l.display(Some(x))), format!("{json}\n"), "{x}");
        }
        assert_eq!(line(|l| l.display(Some(f64::NAN))), "\n");
        assert_eq!(line(|l| l.display(Some(-7i64))), "-7\n");
        assert_eq!(line(|l| l.display(Some(true))), "true\n");
        assert_eq!(line(|l| l.display(None::<i64>)), "\n");
    }

    #[test]
    fn json_values_keep_their_text() {
        let v = serde_json::json!({"k": "v,\"q\"", "n": [1, 2]});
        let got = line(|l| l.json(Some(&v)));
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(got, format!("\"{}\"\n", text.replace('"', "\"\"")));
        assert_eq!(line(|l| l.json(Some(&serde_json::json!(3)))), "3\n");
        assert_eq!(line(|l| l.json(Some(&serde_json::json!("x y")))), "x y\n");
        assert_eq!(line(|l| l.json(None)), "\n");
    }
}
