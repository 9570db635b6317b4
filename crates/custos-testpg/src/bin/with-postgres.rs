//! `with-postgres COMMAND [ARGS…]`: starts a throwaway PostgreSQL server,
//! runs the command with `TESTPG_URL` set to it
//! (`postgres://custos@127.0.0.1:PORT/`; tests create their own databases
//! there) and `TESTPG_DATA` to its cluster folder (for the tests that scan
//! the disk after a destruction), then stops the server and removes its folder, whatever the
//! command did. Exits with the command's status. `scripts/test` runs the
//! conformance suite on PostgreSQL through it.

use std::io::Write;
use std::process::{Command, ExitCode};

use custos_testpg::TestPostgres;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        let _ = writeln!(std::io::stderr(), "usage: with-postgres COMMAND [ARGS…]");
        return ExitCode::from(2);
    };
    let pg = match TestPostgres::start("suite", None) {
        Ok(pg) => pg,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "with-postgres: cannot start PostgreSQL: {e}");
            return ExitCode::from(2);
        }
    };
    let status = Command::new(&program)
        .args(args)
        .env("TESTPG_URL", pg.url(""))
        .env("TESTPG_DATA", pg.dir().join("data"))
        .status();
    drop(pg);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "with-postgres: cannot run {program}: {e}");
            ExitCode::from(2)
        }
    }
}
