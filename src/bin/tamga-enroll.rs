//! `tamga-enroll`: the citizen-side signing client. Everything happens in
//! [`tamga::enroll`].

use std::process::ExitCode;

fn main() -> ExitCode {
    tamga::enroll::main()
}
