//! The command line: `courier-dlq [--config FILE] list|inspect|replay|drain …`, and the exit codes (0 ok, 1
//! failure, 2 usage). [`run`] is the whole program with its arguments, environment and output given, so tests
//! drive it as an operator would.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use courier::kafka::connectivity::check_cluster;
use courier::settings::Settings;

use crate::blocking;
use crate::error::DlqError;
use crate::filter::Filter;
use crate::inspect::{self, At};
use crate::position::StartFrom;
use crate::replay::{self, ReplayOptions, Source};
use crate::{drain, list};

/// What `--help` shows after the options: examples and exit codes.
const AFTER_HELP: &str = "\
Examples:
  courier-dlq list
  courier-dlq inspect orders.created.inventory.dlq --status 409
  courier-dlq inspect orders.created.notification.dlq --channel sms --since 2026-12-03T08:00:00Z --format json | jq .
  courier-dlq inspect orders.created.payment.dlq --show 3:17
  courier-dlq replay orders.created.payment.dlq --dry-run
  courier-dlq replay orders.created.payment.dlq --kind http_status --rate 50 --limit 1000
  courier-dlq drain orders.created.inventory.dlq --to inventory-letters.jsonl
  courier-dlq replay --from inventory-letters.jsonl
  courier-dlq replay orders.created.payment.dlq --restore-position   # after the broker expired its position

Exit codes: 0 ok; 1 failure (unknown topic, a filter that matches nothing, the cluster unreachable or refusing,
a record not acknowledged, the position lost, another replay or drain of the topic running); 2 usage (bad
arguments or settings).

Settings: config/default.toml (built in), then --config FILE, then COURIER__<SECTION>__<KEY> environment
variables, as for the services (kafka.bootstrap_servers, security, group_id_prefix).";

/// courier-dlq: list, inspect, replay and drain courier's dead-letter topics (`<topic>.<group>.dlq`).
#[derive(Debug, Parser)]
#[command(name = "courier-dlq", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// A settings file (TOML) layered over the defaults; COURIER__* environment variables override both.
    #[arg(long, global = true, env = "COURIER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every dead-letter topic (*.dlq): records, oldest and newest dead letter, counts per consumer, channel
    /// and error kind.
    List {
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One line per dead letter of TOPIC (filtered), or one record whole (--show).
    Inspect {
        /// The dead-letter topic.
        topic: String,
        /// The filters.
        #[command(flatten)]
        filter: Filter,
        /// table, or json (JSON lines, one object per dead letter).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print the record at PARTITION:OFFSET (or OFFSET) whole: headers and value.
        #[arg(long, value_name = "[PARTITION:]OFFSET")]
        show: Option<At>,
    },
    /// Send dead letters back to their original topic, for the consumer (and channel) that gave up only.
    Replay(ReplayArgs),
    /// Append the matching dead letters to a JSON-lines file and move the tool's position past them.
    Drain {
        /// The dead-letter topic.
        topic: String,
        /// The file to append to.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The filters.
        #[command(flatten)]
        filter: Filter,
        /// Where to start.
        #[command(flatten)]
        start: StartArgs,
    },
}

/// `replay`'s arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["topic", "from"])))]
pub struct ReplayArgs {
    /// The dead-letter topic (read from the tool's position, group `courier-dlq-replay-<topic>`).
    pub topic: Option<String>,
    /// Replay a file written by drain instead of a topic.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["topic", "from_beginning", "restore_position"])]
    pub from: Option<PathBuf>,
    /// The filters (dead letters left out are passed over: the position moves past them).
    #[command(flatten)]
    pub filter: Filter,
    /// A dead letter replayed this many times already is reported, not replayed (the loop guard).
    #[arg(long, default_value_t = 3)]
    pub max_replays: u32,
    /// Print what would be sent; send nothing, leave the position.
    #[arg(long)]
    pub dry_run: bool,
    /// At most N records per second.
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Replay at most N dead letters (a rerun goes on after them).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Where to start.
    #[command(flatten)]
    pub start: StartArgs,
}

/// Where `replay` and `drain` start on the topic.
#[derive(Debug, Clone, Copy, Args)]
pub struct StartArgs {
    /// Start at the oldest dead letter on the topic, not at the tool's position (sends again what was
    /// replayed); also the way on when the position was lost.
    #[arg(long, conflicts_with = "restore_position")]
    pub from_beginning: bool,
    /// When the broker lost the tool's position (its committed offsets expired or were deleted), go on from
    /// the position recorded in the ledger (topic courier-dlq.positions).
    #[arg(long)]
    pub restore_position: bool,
}

impl StartArgs {
    /// Where to start.
    pub fn start_from(self) -> StartFrom {
        match (self.from_beginning, self.restore_position) {
            (true, _) => StartFrom::Beginning,
            (false, true) => StartFrom::Recorded,
            (false, false) => StartFrom::Position,
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns for people.
    Table,
    /// JSON (for `inspect`: JSON lines).
    Json,
}

/// A rate above 0.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!("`{text}` is not a rate above 0 (records per second)")),
    }
}

/// Runs the program with `args` (the program name first), `env` standing in for the `COURIER__*` environment
/// when given, `interactive` when stdout is a terminal (progress bar), writing to `out` and `err`; returns the
/// exit code.
pub async fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    env: Option<HashMap<String, String>>,
    interactive: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let rendered = error.render().to_string();
            let _ = if code == 0 { write!(out, "{rendered}") } else { write!(err, "{rendered}") };
            return code;
        }
    };
    match execute(cli, env, interactive, out).await {
        Ok(()) => 0,
        Err(error) => {
            tracing::debug!(%error, "courier-dlq failed");
            let _ = writeln!(err, "courier-dlq: {error}");
            error.exit_code()
        }
    }
}

/// An output error.
fn output(error: std::io::Error) -> DlqError {
    DlqError::Io { path: "stdout".into(), source: error }
}

/// Loads the settings, checks the cluster and runs the command.
async fn execute(
    cli: Cli,
    env: Option<HashMap<String, String>>,
    interactive: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let settings = Settings::load_with_env(cli.config.as_deref(), env)?;
    check_cluster(&settings.kafka, Duration::from_secs(10)).await?;
    let kafka = settings.kafka.clone();
    match cli.command {
        Command::List { format } => {
            let summaries = blocking(move || list::list(&kafka)).await?;
            match format {
                Format::Table => list::write_table(out, &summaries),
                Format::Json => list::write_json(out, &summaries),
            }
            .map_err(output)
        }
        Command::Inspect { topic, format, show: Some(at), .. } => {
            let record = blocking(move || inspect::show(&kafka, &topic, at)).await?;
            inspect::write_record(out, &record, format == Format::Json).map_err(output)
        }
        Command::Inspect { topic, filter, format, show: None } => {
            let letters = blocking(move || inspect::letters(&kafka, &topic, &filter)).await?;
            match format {
                Format::Table => inspect::write_table(out, &letters),
                Format::Json => inspect::write_json_lines(out, &letters),
            }
            .map_err(output)
        }
        Command::Replay(args) => {
            // clap requires one of the two.
            let source = match args.from {
                Some(file) => Source::File(file),
                None => Source::Topic(args.topic.unwrap_or_default()),
            };
            let options = ReplayOptions {
                filter: args.filter,
                max_replays: args.max_replays,
                dry_run: args.dry_run,
                rate: args.rate,
                limit: args.limit,
                start: args.start.start_from(),
                progress: interactive,
            };
            let summary = replay::replay(&settings, &source, &options, out).await?;
            replay::write_summary(out, &summary).map_err(output)
        }
        Command::Drain { topic, to, filter, start } => {
            let summary = drain::drain(&settings, &topic, &filter, start.start_from(), &to).await?;
            writeln!(out, "drained {} of {} dead letters read to {}", summary.drained, summary.read, to.display())
                .map_err(output)
        }
    }
}
