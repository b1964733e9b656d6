//! Login flood (a program, not a test): starts the release binary `huying serve` on a fresh
//! SQLite database, floods `POST /api/v1/auth/login` with wrong passwords from C parallel
//! clients for S seconds (unknown user names: each costs a full argon2 check and locks no
//! account, as an attacker without an account would do), and meanwhile samples the server
//! process's RSS and threads (`/proc/<pid>/status`) and the latency of `GET /readyz`.
//!
//! ```text
//! cargo bench --bench login_flood
//! cargo bench --bench login_flood -- --seconds 20 --concurrency 256
//! ```
//!
//! The per-address limit on password attempts is lifted for the run (all clients come from
//! 127.0.0.1), so what is measured is the bounded hashing pool. Results on stdout, progress on
//! stderr. See docs/benchmarks.md.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    concurrency: usize,
}

const USAGE: &str = "usage: cargo bench --bench login_flood -- [--seconds S] [--concurrency C]";

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        seconds: 20,
        concurrency: 256,
    };
    let mut raw = raw.peekable();
    while let Some(a) = raw.next() {
        let mut value = |name: &str| {
            raw.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--seconds" => {
                args.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--concurrency" => {
                args.concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if args.seconds == 0 || args.concurrency == 0 {
        return Err(format!("--seconds and --concurrency must be ≥ 1\n{USAGE}"));
    }
    Ok(args)
}

/// `VmRSS` (kB) and `Threads` of a process.
fn rss_and_threads(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Kills the server when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &std::path::Path, port: u16) -> std::io::Result<Server> {
    let child = Command::new(env!("CARGO_BIN_EXE_huying"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "HUYING__DATABASE__URL",
            format!("sqlite://{}", dir.join("huying.db").display()),
        )
        .env("HUYING__DATA__DIR", dir.join("data"))
        .env("HUYING__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "HUYING__SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        // Every refused sign-in is a 4xx line at WARN today: writing 10⁴ lines is not what is measured.
        .env("HUYING__LOG__LEVEL", "error")
        .env("HUYING__LIMITS__LOGIN_PER_ADDRESS_PER_HOUR", "4000000000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(Server(child))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Counts {
    unauthorized: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
    failed: AtomicU64,
}

async fn run(args: Args) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("huying-login-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
    let _cleanup = TempDir(dir.clone());
    let port = free_port().map_err(|e| format!("port: {e}"))?;
    let server = start_server(&dir, port).map_err(|e| format!("starting huying: {e}"))?;
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = probe.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the server did not become ready within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The floor, in the same run: /readyz on the idle server, timed exactly as during the flood.
    let mut floor = Vec::new();
    let floor_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < floor_until {
        let t = Instant::now();
        if let Ok(r) = probe.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                let _ = r.bytes().await;
                floor.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    floor.sort_by(f64::total_cmp);
    let (idle_rss, idle_threads) = rss_and_threads(pid).ok_or("cannot read /proc")?;
    eprintln!(
        "server pid {pid} ready: RSS {} MB, {idle_threads} threads; flooding for {} s with {} clients",
        idle_rss / 1024,
        args.seconds,
        args.concurrency
    );

    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = rss_and_threads(pid) {
                    if let Ok(mut v) = samples.lock() {
                        v.push(s);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let flood = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    for c in 0..args.concurrency {
        let (flood, counts, base) = (flood.clone(), counts.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let body = serde_json::json!({
                    "username": format!("intruder-{c}-{n}"),
                    "password": "not-the-password",
                });
                match flood
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let counter = match r.status().as_u16() {
                            401 => &counts.unauthorized,
                            503 => &counts.busy,
                            _ => &counts.other,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        let _ = r.bytes().await;
                    }
                    Err(_) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // /readyz every 50 ms on its own connection, as a load balancer would.
    let mut readyz = Vec::new();
    let mut readyz_failed = 0u64;
    while Instant::now() < deadline {
        let t = Instant::now();
        match probe.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                readyz.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            _ => readyz_failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in clients {
        let _ = c.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let after = rss_and_threads(pid);
    drop(server);

    let samples = samples.lock().map_err(|_| "samples")?.clone();
    let peak_rss = samples.iter().map(|s| s.0).max().unwrap_or(0);
    let peak_threads = samples.iter().map(|s| s.1).max().unwrap_or(0);
    readyz.sort_by(f64::total_cmp);
    let total = counts.unauthorized.load(Ordering::Relaxed)
        + counts.busy.load(Ordering::Relaxed)
        + counts.other.load(Ordering::Relaxed);
    println!(
        "| clients | seconds | requests | req/s | 401 | 503 busy | other | errors | RSS idle MB | RSS peak MB | RSS after MB | threads idle / peak | idle /readyz p50 / p99 ms (floor) | /readyz p50 ms | /readyz p99 ms | /readyz max ms | /readyz failed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.1} | **{:.1}** | {:.1} | {} / {} | {:.1} / {:.1} | {:.1} | **{:.1}** | {:.1} | {} |",
        args.concurrency,
        args.seconds,
        total,
        total as f64 / args.seconds as f64,
        counts.unauthorized.load(Ordering::Relaxed),
        counts.busy.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        after.map_or(f64::NAN, |a| a.0 as f64 / 1024.0),
        idle_threads,
        peak_threads,
        percentile(&floor, 0.50),
        percentile(&floor, 0.99),
        percentile(&readyz, 0.50),
        percentile(&readyz, 0.99),
        readyz.last().copied().unwrap_or(f64::NAN),
        readyz_failed,
    );
    Ok(())
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // One thread for the flood: the server under test gets the machine's cores.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("login_flood: {e}");
            ExitCode::FAILURE
        }
    }
}
