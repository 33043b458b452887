// libotelctx (../../libotelctx), compiled as its Makefile compiles the static
// library: gcc, -mtls-dialect=gnu2 (TLSDESC, relaxed by the linker to
// local-exec in this executable).
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../libotelctx");
    let srcs = ["record.c", "traceparent.c", "process.c", "inherit.c", "util.c", "envconf.c", "real_create_static.c"];
    let mut b = cc::Build::new();
    b.compiler("gcc").std("c11").include(root.join("include")).flag("-mtls-dialect=gnu2").flag("-fvisibility=hidden").warnings(false);
    for s in srcs {
        b.file(root.join("src").join(s));
        println!("cargo:rerun-if-changed={}", root.join("src").join(s).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("include/otelctx.h").display());
    b.compile("otelctx");
}
