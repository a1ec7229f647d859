//! Every option of every command says what it does in `--help`.

use clap::CommandFactory;

#[test]
fn every_option_has_help() {
    let mut missing = Vec::new();
    let root = crate::Cli::command();
    for cmd in root.get_subcommands() {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("{} --{id}", cmd.get_name()));
            }
        }
    }
    assert!(missing.is_empty(), "options without help: {missing:?}");
}
