//! The `shipworm` binary: parse the command line and run a role.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use shipworm::cli::{self, Command};
use shipworm::{client, logger, relay, server};

/// Exit status for bad usage and failed start-up checks.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::help());
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("{}", cli::VERSION);
            ExitCode::SUCCESS
        }
        Ok(Command::Relay(args)) => {
            logger::init(args.log_level);
            match relay::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Ok(Command::Server(args)) => {
            logger::init(args.log_level);
            match server::run(args.config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Ok(Command::Client(args)) => {
            logger::init(args.log_level);
            match client::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Err(e) => {
            eprintln!("shipworm: {e}; see 'shipworm --help'");
            ExitCode::from(USAGE)
        }
    }
}
