use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use huying::config::Settings;
use huying::db::Db;
use huying::domain::role::Role;
use huying::error::AppError;
use huying::startup::{self, Application};

/// 呼应 Huying: 三级呼叫响应 / the three-tier call-and-response service.
#[derive(Parser)]
#[command(name = "huying", version)]
struct Cli {
    /// A TOML file overriding config/default.toml (environment HUYING__SECTION__KEY wins over it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve {
        /// Listen on HOST:PORT instead of server.bind.
        #[arg(long, value_name = "HOST:PORT")]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a demo street with units, staff accounts and residents; print them as JSON.
    SeedDemo {
        /// Street code (ticket reference prefix).
        #[arg(long, default_value = "YC")]
        code: String,
        /// One password for every demo account (default: a random one each).
        #[arg(long)]
        password: Option<String>,
    },
    /// Run the SLA sweeper: warnings, automatic calls up, overdue marks, auto-close.
    Sweep {
        /// One sweep, print what it did as JSON, and exit (else sweep every sla.sweep_interval_secs).
        #[arg(long)]
        once: bool,
        /// Evaluate the clocks as of this instant (RFC 3339), for drills; with --once.
        #[arg(long, value_name = "RFC3339", requires = "once")]
        at: Option<String>,
    },
    /// Deliver pending notifications (SMS, email, WeCom robot) from the outbox.
    Dispatch {
        /// One batch, print what it did as JSON, and exit (else run until stopped).
        #[arg(long)]
        once: bool,
    },
    /// Back up a SQLite deployment while it runs: the database and the photos in one .tar.gz.
    Backup {
        /// The archive to write (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore a `backup` archive into an empty data directory (exit 2 if it is not empty).
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff or admin account; the password is read from the first line of stdin.
    Add {
        #[arg(long)]
        username: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// admin | street_staff | community_staff | compound_staff
        #[arg(long, default_value = "admin")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The org unit a staff account answers for.
        #[arg(long)]
        org_unit_id: Option<i64>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
}

/// glibc gives each thread that allocates while another holds an arena a new one, up to eight
/// per core, and keeps what each arena once held: after a burst of requests on the blocking
/// threads the process held 108 MB in 15 arenas (docs/benchmarks.md, memory). Two arenas cost no
/// measurable throughput here and hold 32 MB. `MALLOC_ARENA_MAX` in the environment still wins.
///
/// Blocks of 1 MiB and more are mapped and given back when freed: glibc otherwise raises that
/// threshold to the size of the first large block freed, and from then on keeps such blocks (a
/// password check's 19 MiB of argon2 memory, `auth::password`) in its arenas.
/// `MALLOC_MMAP_THRESHOLD_` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets a malloc parameter; called before any thread starts.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            }
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    huying::db::init_openssl();
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    huying::telemetry::init(&settings.log);
    let result = match cli.command.unwrap_or(Command::Serve { bind: None }) {
        Command::Serve { bind } => {
            if let Some(b) = bind {
                settings.server.bind = b;
            }
            serve(settings)
        }
        Command::Migrate => migrate(settings),
        Command::Sweep { once, at } => sweep(settings, once, at.as_deref()),
        Command::Dispatch { once } => dispatch(settings, once),
        Command::SeedDemo { code, password } => seed(settings, &code, password.as_deref()),
        Command::Backup { to } => print_json(huying::backup::backup(&settings, &to)),
        Command::Restore { from } => print_json(huying::backup::restore(&settings, &from)),
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    password_stdin: _,
                    role,
                    display_name,
                    org_unit_id,
                    phone,
                    email,
                },
        } => add_user(
            settings,
            username,
            role,
            display_name,
            org_unit_id,
            phone,
            email,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<huying::backup::Refused>() => {
            eprintln!("错误 / error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("错误 / error: {e:#}");
            if e.downcast_ref::<startup::MissingDatabase>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(database = %settings.database_url_redacted(), "starting");
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        let app = Application::build(settings)?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn print_json<T: serde::Serialize>(report: anyhow::Result<T>) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(&report?)?);
    Ok(())
}

fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    startup::check_database_present(settings)?;
    let db = Db::connect(settings)?;
    startup::migrate(&db)?;
    Ok(db)
}

fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = Db::connect(&settings)?;
    let applied = startup::migrate(&db)?;
    if applied.is_empty() {
        eprintln!("数据库已是最新 / database is up to date");
    } else {
        for m in applied {
            eprintln!("applied {m}");
        }
    }
    Ok(())
}

fn sweep(settings: Settings, once: bool, at: Option<&str>) -> anyhow::Result<()> {
    let at = at
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    anyhow::anyhow!("--at must be RFC 3339, e.g. 2026-10-08T12:00:00+08:00: {e}")
                })
        })
        .transpose()?;
    let db = open_db(&settings)?;
    let sla = huying::service::sla::SlaEngine::from_settings(&settings.sla)?
        .with_callbacks(&settings.callbacks);
    let batch = settings.sla.sweep_batch;
    loop {
        let now = at.unwrap_or_else(chrono::Utc::now);
        let mut conn = db.get().map_err(failed)?;
        sla.reload(&mut conn).map_err(failed)?;
        let report =
            huying::service::sweeper::sweep_once(&mut conn, &sla, now, batch).map_err(failed)?;
        if once {
            println!("{}", serde_json::to_string(&report)?);
            return Ok(());
        }
        if report.examined > 0 {
            tracing::info!(?report, "SLA sweep");
        }
        std::thread::sleep(std::time::Duration::from_secs(
            settings.sla.sweep_interval_secs,
        ));
    }
}

fn dispatch(settings: Settings, once: bool) -> anyhow::Result<()> {
    let db = open_db(&settings)?;
    let sms = huying::sms::from_settings(&settings.sms)?;
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        let d = huying::notify::dispatch::Dispatcher::new(&settings, db, sms)?;
        if once {
            let report = d.dispatch_once(chrono::Utc::now()).await.map_err(failed)?;
            println!("{}", serde_json::to_string(&report)?);
            return Ok(());
        }
        d.run(std::sync::Arc::new(huying::domain::clock::SystemClock))
            .await;
        Ok(())
    })
}

fn seed(settings: Settings, code: &str, password: Option<&str>) -> anyhow::Result<()> {
    let db = open_db(&settings)?;
    let mut conn = db.get().map_err(failed)?;
    let now = huying::db::round_ts(chrono::Utc::now());
    let data = huying::cli::seed_demo(&mut conn, code, password, now).map_err(failed)?;
    println!("{}", serde_json::to_string_pretty(&data)?);
    Ok(())
}

fn add_user(
    settings: Settings,
    username: String,
    role: String,
    display_name: Option<String>,
    org_unit_id: Option<i64>,
    phone: Option<String>,
    email: Option<String>,
) -> anyhow::Result<()> {
    let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role `{role}`"))?;
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let db = open_db(&settings)?;
    let mut conn = db.get().map_err(failed)?;
    let now = huying::db::round_ts(chrono::Utc::now());
    let input = huying::service::users::CreateUser {
        role,
        username: Some(username.clone()),
        password: Some(password),
        display_name: display_name.unwrap_or_else(|| username.clone()),
        phone,
        email,
        org_unit_id,
    };
    let row = huying::db::write_tx(&mut conn, |c| {
        huying::service::users::create(c, &input, now)
    })
    .map_err(failed)?;
    println!(
        "{}",
        serde_json::json!({"id": row.id, "username": row.username, "role": row.role})
    );
    Ok(())
}

/// A failed use case as the operator reads it: the error and its stable code. Not through
/// `error_response`, which builds the HTTP answer and logs a failed request.
fn failed(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{e} ({})", e.code())
}
