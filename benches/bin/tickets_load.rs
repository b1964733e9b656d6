//! Entry of `cargo bench --bench tickets_load`. The program is `benches/tickets_load.rs`: a module here, so
//! that `benches/all.rs` can include it as well, with the one `common` both share.

#[path = "../common/mod.rs"]
mod common;
#[path = "../tickets_load.rs"]
mod tickets_load;

fn main() -> std::process::ExitCode {
    tickets_load::main()
}
