//! The `trafficalerted` binary: arguments, logging, exit codes.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use trafficalerted::cli::{Cli, Command};
use trafficalerted::config::{self, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let config = match load(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e, 2),
            };
            match trafficalerted::daemon::run(config, cli.config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e, 1),
            }
        }
        Command::CheckConfig { file } => {
            let path = file.or(cli.config);
            match load(path.as_deref()) {
                Ok(c) => {
                    let json = serde_json::to_string_pretty(&c).unwrap_or_default();
                    let code = emit(&format!("{json}\n"));
                    eprintln!("configuration OK");
                    code
                }
                Err(e) => fail(&e, 2),
            }
        }
        Command::Replay {
            files,
            speed,
            alerts_only,
            json,
            top,
            history,
            no_progress,
        } => {
            let config = match load(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e, 2),
            };
            let opts = trafficalerted::replay::Options {
                files,
                speed,
                alerts_only,
                json,
                top,
                history,
                progress: !no_progress,
            };
            match trafficalerted::replay::run(&config, &opts) {
                Ok(summary) => {
                    if json {
                        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
                        emit(&format!("{text}\n"))
                    } else if !alerts_only {
                        emit(&summary.table())
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => fail(&e, 1),
            }
        }
        Command::DefaultConfig => emit(config::DOCUMENTED_DEFAULT),
        Command::ConvertConfig { file } => match convert(&file) {
            Ok(toml) => emit(&toml),
            Err(e) => fail(&e, 2),
        },
    }
}

/// The config named with -c (which must exist), else the default path if it
/// exists, else the built-in defaults.
fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => {
            let p = Path::new(config::DEFAULT_PATH);
            if p.exists() {
                Ok(Config::load(p)?)
            } else {
                log::info!(
                    "no config file at {}; running on the built-in defaults",
                    p.display()
                );
                Ok(Config::default())
            }
        }
    }
}

/// Converts an original TrafficAlerted.conf; the result is checked before
/// it is printed.
fn convert(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let text = config::file::read_regular(path, config::file::MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let c =
        config::legacy::convert(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for (line, key) in &c.unknown {
        log::warn!(
            "{}, line {line}: {key} has no equivalent; left as a comment",
            path.display()
        );
    }
    Config::parse(&c.toml, "the converted config")?;
    Ok(c.toml)
}

/// Writes a command's answer to standard output. A reader that has gone
/// (`| grep -q`, `| head`) ends the command quietly, as it would end `cat`;
/// any other write error is reported.
fn emit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trafficalerted: cannot write to standard output: {e}");
            ExitCode::from(1)
        }
    }
}

fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("trafficalerted: {e:#}");
    ExitCode::from(code)
}
