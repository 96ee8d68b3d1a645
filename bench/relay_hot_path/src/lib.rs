//! Nothing but the `relay_hot_path` benchmark (`benches/relay_hot_path.rs`):
//! `cargo bench -p relay_hot_path`. See bench/README.md.
