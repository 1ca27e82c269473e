fn main() -> std::io::Result<()> {
    let schemas = [
        "schemas/wire.proto",
        "schemas/content.proto",
        "schemas/relay.proto",
        "schemas/card.proto",
    ];
    for s in schemas {
        println!("cargo:rerun-if-changed={s}");
    }
    prost_build::Config::new().compile_protos(&schemas, &["schemas"])
}
