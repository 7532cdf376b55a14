//! `cargo run -p livetape-testkit --bin fixture -- NAME…`: builds the named clips (if not
//! cached yet) and prints their paths, one per line, for scripts and benches outside Rust.

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        eprintln!(
            "usage: fixture NAME…  (known: {})",
            livetape_testkit::CLIPS.map(|c| c.name).join(", ")
        );
        std::process::exit(2);
    }
    for name in names {
        let Some(clip) = livetape_testkit::CLIPS.iter().find(|c| c.name == name) else {
            eprintln!("unknown fixture {name}");
            std::process::exit(2);
        };
        println!("{}", livetape_testkit::fixture(clip).display());
    }
}
