//! The `shipworm` binary: parse the command line and the configuration
//! file, set up the process (pid file, background, syslog) and run a role.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use shipworm::cli::{self, Command, Role, Run};
use shipworm::sys::daemon::{self, LockError, PidFile};
use shipworm::{client, logger, relay, server, status};

/// Exit status for bad usage, a bad configuration and failed start-up
/// checks.
const USAGE: u8 = 2;

/// Exit status for a system error.
const FAILURE: u8 = 1;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("{}", cli::VERSION);
            ExitCode::SUCCESS
        }
        Ok(Command::CheckConfig(run)) => {
            println!("configuration OK: {}", run.role.describe());
            ExitCode::SUCCESS
        }
        Ok(Command::Run(run)) => start(run),
        Ok(Command::Status(args)) => {
            ExitCode::from(status::command(args.json, args.socket.as_deref()))
        }
        Err(e) => {
            // A file's mistake is named by file and line; --help helps with
            // the command line's only.
            let hint = if e.is_command_line() {
                "; see 'shipworm --help'"
            } else {
                ""
            };
            eprintln!("shipworm: {e}{hint}");
            ExitCode::from(USAGE)
        }
    }
}

/// Lock the pid file, detach if asked, pick the log destination, run the
/// role; the pid file goes when the role returns.
// Out of line, as are the roles' `run` functions: with LTO folding every
// role's start-up and event loop into `main`, the one huge function came out
// about 12 KB bigger on mipsel than the same code in separate functions.
#[inline(never)]
fn start(run: Run) -> ExitCode {
    let Run {
        role,
        process,
        reload,
    } = run;
    logger::init(role.log_level());
    // Before detaching, so "already running" still reaches the terminal.
    let mut pid_file = match &process.pid_file {
        None => None,
        Some(path) => match PidFile::lock(path) {
            Ok(f) => Some(f),
            Err(LockError::Held(pid)) => {
                let by = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                eprintln!(
                    "shipworm: {} is locked by another shipworm{by}: it is already running",
                    path.display()
                );
                return ExitCode::from(USAGE);
            }
            Err(LockError::Io(e)) => {
                eprintln!("shipworm: cannot open the pid file {}: {e}", path.display());
                return ExitCode::from(USAGE);
            }
        },
    };
    if process.daemon {
        if let Err(e) = daemon::detach() {
            eprintln!("shipworm: cannot detach: {e}");
            return ExitCode::from(FAILURE);
        }
        // A new process id.
        logger::init(role.log_level());
    }
    if let Some(facility) = process.syslog {
        logger::use_syslog(facility);
    }
    if let Some(f) = &mut pid_file {
        if let Err(e) = f.write_pid() {
            log::warn!("cannot write the pid file: {e}");
        }
    }
    let result = match role {
        Role::Relay(args) => relay::run(args, reload, &process),
        Role::Server(args) => server::run(args.config, reload, &process),
        Role::Client(args) => client::run(args, reload, &process),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            // With --daemon, the terminal learns why start-up failed.
            daemon::failed(e.exit_code(), e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
