//! The shipped daemon cannot compile Wasm: its Wasmtime dependency has no compiler feature, so
//! `Module::new` does not even exist in `cargo build -p tensorwasmd`. (Within a workspace build
//! Cargo unifies features with the compiler crate; ship with `-p tensorwasmd`.)

const WORKSPACE: &str = include_str!("../../Cargo.toml");
const DAEMON: &str = include_str!("../Cargo.toml");

#[test]
fn the_daemon_links_wasmtime_without_a_compiler() {
    let root: toml::Table = toml::from_str(WORKSPACE).unwrap();
    let wasmtime = &root["workspace"]["dependencies"]["wasmtime"];
    assert_eq!(wasmtime["default-features"].as_bool(), Some(false));
    let features: Vec<&str> = wasmtime["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for compiler in ["cranelift", "winch", "default"] {
        assert!(!features.contains(&compiler), "{features:?}");
    }
    let daemon: toml::Table = toml::from_str(DAEMON).unwrap();
    let dep = &daemon["dependencies"]["wasmtime"];
    assert_eq!(dep["workspace"].as_bool(), Some(true));
    assert!(
        dep.get("features").is_none(),
        "the daemon adds wasmtime features: {dep:?}"
    );
    for (name, _) in daemon["dependencies"].as_table().unwrap() {
        assert!(
            !name.contains("cranelift") && name != "tensorwasm",
            "the daemon depends on {name}"
        );
    }
}
