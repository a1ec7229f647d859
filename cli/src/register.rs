//! `tasker register`: registers the pipeline declared under `tasks:` in the
//! configuration file (stages, tasks, dependencies) in one transaction, as a
//! pipeline's first write would; `--dry-run` shows what that is without writing.

use clap::Args;

use crate::{CliResult, Failure, Global};

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Check the declaration and print it; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn register(g: &Global, a: &RegisterArgs) -> CliResult {
    let config = g.config()?;
    if config.tasks.is_empty() {
        return Err(Failure::new(
            "no pipeline is declared: add a `tasks:` list (entries with stage, name and \
             depends_on) to .tasker.yml or the file given with --config",
        ));
    }
    let mut lines = String::new();
    for spec in &config.tasks {
        let deps = match spec.depends_on.as_deref() {
            Some(d) if !d.is_empty() => format!("  <- {}", d.join(", ")),
            _ => String::new(),
        };
        lines.push_str(&format!("  {}/{}{deps}\n", spec.stage, spec.name));
    }
    if a.dry_run {
        print!(
            "{} tasks declared (not registered: --dry-run):\n{lines}",
            config.tasks.len()
        );
        return Ok(());
    }
    let t = tasker::Tracker::open(config)?;
    let n = t.register_declared()?;
    t.close()?;
    print!("registered {n} tasks:\n{lines}");
    Ok(())
}
