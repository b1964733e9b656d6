//! Builds the application: database, state, HTTP server. Used by `main` and by tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App};
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::doc::{ApiDoc, ErrorStatuses};

use crate::auth::tokens::JwtKeys;
use crate::config::Settings;
use crate::db::Db;
use crate::domain::clock::{Clock, SystemClock};
use crate::http;
use crate::state::AppState;

/// Runs the pending migrations and then, under the same lock, the back-fill of the statistics
/// facts of tickets written before they existed (or under older rules): those are computed in
/// Rust, where the rules are.
pub fn migrate(db: &Db) -> anyhow::Result<Vec<String>> {
    let applied = db.migrate(|conn| {
        crate::service::stats::facts::backfill(conn)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("back-filling statistics facts: {e}"))
    })?;
    record_install(db);
    Ok(applied)
}

/// The SQLite database file is missing where an earlier install left its marks: starting would
/// silently begin again with an empty database. The exit code is 2.
#[derive(Debug, thiserror::Error)]
#[error(
    "数据库文件不存在 / the database file {path} is missing, but {evidence} shows this data \
     directory was in use: refusing to start with a new, empty database. Restore the file \
     from a backup, or run `huying migrate` to create an empty one on purpose."
)]
pub struct MissingDatabase {
    pub path: PathBuf,
    pub evidence: String,
}

/// Next to the SQLite file: `huying.db` → `huying.db.installed`.
pub fn install_marker(db_file: &Path) -> PathBuf {
    let mut name = db_file.file_name().unwrap_or_default().to_os_string();
    name.push(".installed");
    db_file.with_file_name(name)
}

/// Before anything but `huying migrate` opens a SQLite database: a missing file is created
/// only on first use, when no install marker and no attachments are there.
pub fn check_database_present(settings: &Settings) -> Result<(), MissingDatabase> {
    let Ok(target) = crate::db::Target::parse(settings.database.url.expose_secret()) else {
        return Ok(());
    };
    let Some(file) = target.sqlite_file() else {
        return Ok(());
    };
    if file.exists() {
        return Ok(());
    }
    let marker = install_marker(&file);
    let attachments = settings.data.dir.join("attachments");
    let evidence = if marker.exists() {
        Some(format!("the install marker {}", marker.display()))
    } else if std::fs::read_dir(&attachments).is_ok_and(|mut d| d.next().is_some()) {
        Some(format!("the attachments in {}", attachments.display()))
    } else {
        None
    };
    match evidence {
        Some(evidence) => Err(MissingDatabase {
            path: file,
            evidence,
        }),
        None => Ok(()),
    }
}

/// Leaves the marker `check_database_present` looks for (once; a failure only warns).
fn record_install(db: &Db) {
    let Some(file) = db.sqlite_path() else {
        return;
    };
    let marker = install_marker(file);
    if marker.exists() {
        return;
    }
    let text = format!(
        "Huying keeps its SQLite database in {}. While this file exists, `huying serve` will not\n\
         start with a new, empty database if that one goes missing. Delete it only to start afresh.\n",
        file.display()
    );
    if let Err(e) = std::fs::write(&marker, text) {
        tracing::warn!(marker = %marker.display(), error = %e, "cannot write the install marker");
    }
}

/// Opens the database (migrating if configured) and builds the shared state.
pub fn build_state(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    check_database_present(&settings)?;
    let db = Db::connect(&settings)?;
    if settings.database.migrate_on_start {
        let applied = migrate(&db)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
    } else {
        record_install(&db);
    }
    let secret = if settings.auth.jwt_secret.expose_secret().is_empty() {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = crate::db::round_ts(clock.now());
        crate::db::write_tx(&mut conn, |c| crate::service::auth::signing_secret(c, now))
            .map_err(|e| anyhow::anyhow!("loading signing secret: {e}"))?
    } else {
        settings.auth.jwt_secret.expose_secret().as_bytes().to_vec()
    };
    if secret.len() < 32 {
        anyhow::bail!("auth.jwt_secret must be at least 32 bytes");
    }
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let sms: Arc<dyn crate::sms::SmsSender> = Arc::new(crate::metrics::CountedSms {
        inner: crate::sms::from_settings(&settings.sms)?,
        metrics: metrics.clone(),
    });
    let sla = crate::service::sla::SlaEngine::from_settings(&settings.sla)?
        .with_callbacks(&settings.callbacks);
    {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        sla.reload(&mut conn)
            .map_err(|e| anyhow::anyhow!("loading SLA policies: {e}"))?;
    }
    let hasher = crate::auth::password::HashPool::new(
        settings.limits.password_hash_workers,
        settings.limits.password_hash_queue,
    )?;
    let address_limits = crate::limits::AddressLimits::new(&settings.limits);
    // Live updates: changes committed through this pool reach this instance's stream clients.
    let live = crate::live::Hub::new(settings.stream.buffer);
    let db = db.with_live(&live)?;
    Ok(AppState {
        db,
        live,
        totals: Arc::default(),
        pages: Arc::default(),
        accounts: Arc::default(),
        hasher: Arc::new(hasher),
        address_limits: Arc::new(address_limits),
        partner_limits: Arc::new(crate::limits::PartnerLimits::default()),
        metrics,
        settings: Arc::new(settings),
        clock,
        sms,
        jwt: Arc::new(JwtKeys::new(&secret)),
        sla: Arc::new(sla),
    })
}

pub struct Application {
    port: u16,
    server: Server,
    /// The `metrics.bind` listener's port and server, when it has one.
    metrics: Option<(u16, Server)>,
}

impl Application {
    /// Binds `settings.server.bind` (port 0 picks a free port) and builds the server.
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, Arc::new(SystemClock))
    }

    pub fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let bind = settings.server.bind.clone();
        let workers = settings.server.workers;
        let state = build_state(settings, clock)?;
        let listener = TcpListener::bind(&bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        let port = listener.local_addr()?.port();
        tracing::info!(address = %listener.local_addr()?, database = ?state.db.engine(), "Huying listening");
        actix_web::rt::spawn(crate::live::close_on_shutdown(Arc::downgrade(&state.live)));
        if state.settings.sla.sweeper_enabled {
            actix_web::rt::spawn(sweeper_loop(state.clone()));
        }
        if state.settings.notify.dispatcher_enabled {
            let dispatcher = crate::notify::dispatch::Dispatcher::new(
                &state.settings,
                state.db.clone(),
                state.sms.clone(),
            )?
            .with_metrics(state.metrics.clone());
            actix_web::rt::spawn(dispatcher.run(state.clock.clone()));
        }
        let metrics = match &state.settings.metrics {
            m if m.enabled && !m.bind.is_empty() => {
                let l = TcpListener::bind(&m.bind).map_err(|e| {
                    anyhow::anyhow!("cannot listen on {} (metrics.bind): {e}", m.bind)
                })?;
                let port = l.local_addr()?.port();
                tracing::info!(address = %l.local_addr()?, "metrics listening");
                Some((port, crate::metrics::server(l, state.clone())?))
            }
            _ => None,
        };
        let server = run(listener, state, workers)?;
        Ok(Application {
            port,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener (`metrics.bind`), if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(p, _)| *p)
    }

    /// Runs the server (and the metrics listener beside it) until it stops; the metrics
    /// listener stops with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, metrics)) = self.metrics else {
            return self.server.await;
        };
        let handle = metrics.handle();
        actix_web::rt::spawn(metrics);
        let r = self.server.await;
        handle.stop(true).await;
        r
    }

    pub fn into_server(self) -> Server {
        self.server
    }
}

fn run(listener: TcpListener, state: AppState, workers: usize) -> anyhow::Result<Server> {
    // `/metrics` on this listener only when enabled and not given a listener of its own.
    let metrics_here = state.settings.metrics.enabled && state.settings.metrics.bind.is_empty();
    let data = web::Data::new(state);
    let server = crate::server::serve(listener, workers, move || {
        // Outermost last: the request id exists before the request span opens; error bodies
        // are made JSON before the headers every response gets are added.
        let (app, doc) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .map(|app| {
                app.wrap(middleware::Compress::default())
                    .wrap(middleware::from_fn(http::json_errors))
                    .wrap(middleware::from_fn(http::clean_uri))
                    .wrap(
                        middleware::DefaultHeaders::new()
                            .add(("X-Content-Type-Options", "nosniff"))
                            .add(("Referrer-Policy", "same-origin")),
                    )
                    .wrap(middleware::from_fn(http::security_headers))
                    .wrap(TracingLogger::<http::RequestSpan>::new())
                    .wrap(middleware::from_fn(crate::metrics::track))
                    .wrap(middleware::from_fn(http::request_id))
                    .app_data(data.clone())
                    .configure(crate::api::extractor_configs)
            })
            .configure(crate::api::configure)
            .openapi_service(|mut doc| {
                ErrorStatuses.modify(&mut doc);
                SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", doc)
            })
            .map(|app| {
                // Not in the OpenAPI document: see `metrics::scrape`.
                let app = if metrics_here {
                    app.route("/metrics", web::get().to(crate::metrics::scrape))
                } else {
                    app
                };
                // Not in the OpenAPI document either: Open311 answers in its own error format
                // (docs/open311.md).
                app.configure(crate::api::open311::configure)
                    .configure(crate::web::configure)
            })
            .default_service(web::to(crate::api::not_found))
            .split_for_parts();
        app.app_data(web::Data::new(http::AllowMap::from_doc(&doc)))
    })?;
    Ok(server)
}

/// Sweeps every `sla.sweep_interval_secs` for as long as the server runs.
async fn sweeper_loop(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(
        state.settings.sla.sweep_interval_secs,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retention_checked: Option<chrono::NaiveDate> = None;
    loop {
        tick.tick().await;
        let now = state.clock.now();
        let metrics = state.metrics.clone();
        if retention_checked != Some(now.date_naive()) && retention(&state, now).await {
            retention_checked = Some(now.date_naive());
        }
        let batch = state.settings.sla.sweep_batch;
        match crate::service::sweeper::sweep(&state.db, &state.sla, now, batch).await {
            Ok(r) => {
                metrics.sweep(
                    true,
                    &[
                        ("examined", r.examined),
                        ("warned", r.warned),
                        ("escalated", r.escalated),
                        ("marked_overdue", r.marked_overdue),
                        ("auto_closed", r.auto_closed),
                        ("resumed", r.resumed),
                    ],
                    now,
                );
                if r.examined > 0 {
                    tracing::info!(report = ?r, "SLA sweep");
                }
            }
            Err(e) => {
                metrics.sweep(false, &[], now);
                tracing::warn!(error = %e, "SLA sweep failed; retrying at the next tick");
            }
        }
    }
}

/// Once a day: erase the residents whose retention period (`privacy.retention_years`) ended.
/// False if it failed (tried again at the next sweep).
async fn retention(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> bool {
    let db = state.db.clone();
    let years = state.settings.privacy.retention_years;
    let failed =
        match web::block(move || crate::service::privacy::erase_expired(&db, now, years)).await {
            Ok(Ok(0)) => return true,
            Ok(Ok(n)) => {
                tracing::info!(residents = n, "retention: personal data erased");
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
    tracing::warn!(error = %failed, "retention failed; retrying at the next sweep");
    false
}
