//! Compiles the protobuf API with `protox`, so a fresh machine needs no system
//! `protoc`, and keeps the encoded descriptor set for server reflection.

use std::{env, fs, io, path::PathBuf};

const PROTOS: &[&str] = &[
    "cpt/v1/code.proto",
    "cpt/v1/code_lookup.proto",
    "cpt/v1/quality_measures.proto",
    "cpt/v1/claim_check.proto",
    // Only for reflection: clients decode error details with it. The server
    // builds these messages through `tonic-types`.
    "google/rpc/error_details.proto",
];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);

    let mut compiler = protox::Compiler::new(["proto"]).map_err(io::Error::other)?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS).map_err(io::Error::other)?;

    fs::write(
        out_dir.join("cpt_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::api::ProtobufCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())
}
