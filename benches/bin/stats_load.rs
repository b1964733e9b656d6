//! Entry of `cargo bench --bench stats_load`. The program is `benches/stats_load.rs`: a module here, so
//! that `benches/all.rs` can include it as well, with the one `common` both share.

#[path = "../common/mod.rs"]
mod common;
#[path = "../stats_load.rs"]
mod stats_load;

fn main() -> std::process::ExitCode {
    stats_load::main()
}
