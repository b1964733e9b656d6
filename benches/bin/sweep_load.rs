//! Entry of `cargo bench --bench sweep_load`. The program is `benches/sweep_load.rs`: a module here, so
//! that `benches/all.rs` can include it as well, with the one `common` both share.

#[path = "../common/mod.rs"]
mod common;
#[path = "../sweep_load.rs"]
mod sweep_load;

fn main() -> std::process::ExitCode {
    sweep_load::main()
}
