//! The generated protobuf and gRPC types. Only the `api` edge imports them.

#![allow(missing_docs, clippy::all)]

/// Package `cpt.v1`.
pub mod cpt {
    /// Version 1 of the cptd API.
    pub mod v1 {
        tonic::include_proto!("cpt.v1");
    }
}

pub use cpt::v1::*;

/// The encoded descriptor set of `cpt.v1`, served through reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cpt_descriptor");
