fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::create_dir_all(format!("{out}/protos")).unwrap();
    for f in ["mod.rs", "eraftpb.rs"] {
        std::fs::copy(format!("pregen/{f}"), format!("{out}/protos/{f}")).unwrap();
    }
}
