//! The `tamga` binary: everything happens in [`tamga::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    tamga::cli::main()
}
