//! Regenerates the protobuf fixtures in `sample-data/fixtures/`:
//! `cargo run -p smolder-sample-data --example write_fixtures`.
//! A test checks that the committed files equal what this writes.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for (name, bytes) in smolder_sample_data::fixtures::protobuf() {
        std::fs::write(dir.join(name), bytes)?;
        println!("wrote fixtures/{name}");
    }
    Ok(())
}
