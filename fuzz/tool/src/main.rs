//! The `memslot-diff` command. All logic lives in `memslot_diff::cli` so that tests can call it
//! directly.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(memslot_diff::cli::run(&args));
}
