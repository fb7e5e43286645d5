//! Rebuilds the server when the embedded web files change: rust-embed alone does not notice
//! files added to its folders.
fn main() {
    println!("cargo:rerun-if-changed=../../sdk/web/demo");
    println!("cargo:rerun-if-changed=../../sdk/web/src");
}
