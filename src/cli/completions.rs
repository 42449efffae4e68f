//! `tamga completions SHELL`: the shell completion script of `tamga` (or, with `--enroll`, of
//! `tamga-enroll`), made from the clap types. Needs no configuration.

use std::io::Write as _;

use clap::CommandFactory;

use super::*;

pub(super) fn completions(shell: clap_complete::Shell, enroll: bool) -> Result<(), Failure> {
    let (mut command, name) = if enroll {
        (crate::enroll::Cli::command(), "tamga-enroll")
    } else {
        (Cli::command(), "tamga")
    };
    // Made in memory first: the generator panics on a write error, and a closed standard
    // output must end the command quietly (see `out!`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(Failure::Output)
}
