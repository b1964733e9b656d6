//! Entry of `cargo bench --bench dispatch_load`. The program is `benches/dispatch_load.rs`: a module here, so
//! that `benches/all.rs` can include it as well, with the one `common` both share.

#[path = "../common/mod.rs"]
mod common;
#[path = "../dispatch_load.rs"]
mod dispatch_load;

fn main() -> std::process::ExitCode {
    dispatch_load::main()
}
