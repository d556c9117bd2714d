//! The `ferry` binary: parses the command line, runs it, prints errors (also as JSON on stdout
//! with `--json`) and exits with the documented code (see `ferry --help`, docs/cli.md).

use clap::Parser;
use ferry_cli::args::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let json = cli.global.json;
    if let Err(error) = ferry_cli::commands::run(cli).await {
        eprintln!("error: {}", error.message);
        if let Some(hint) = &error.hint {
            eprintln!("hint: {hint}");
        }
        if json {
            let value = serde_json::json!({ "error": error, "exit_code": error.exit_code() });
            println!("{value}");
        }
        std::process::exit(error.exit_code());
    }
}
