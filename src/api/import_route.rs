//! `ImportEncounters` read off the wire without decoding on the async runtime.
//!
//! The generated `QualityMeasuresServer` decodes each message of a client
//! stream as the handler reads it, on a runtime worker, where the look-ups of
//! other clients wait their turn. [`QualityMeasuresRoutes`] sits in front of it
//! and takes `ImportEncounters` itself ([`super::method_route`]), through
//! tonic's own client-streaming handling, with a codec that keeps each message
//! as the bytes that came. The import decodes them a chunk at a time on its
//! low-priority threads, beside the parsing and judging (see
//! `quality_import`). Every other method goes to the generated server
//! unchanged; size limits, status codes and the summary's encoding are those
//! of the generated path.

use std::convert::Infallible;

use prost::bytes::Buf;
use tonic::{
    Request, Response, Status, Streaming,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder},
    codegen::{BoxFuture, http},
    server::{ClientStreamingService, Grpc},
};
use tonic_prost::ProstEncoder;

use super::{
    method_route::{EncodedMessage, MethodRoute, TakenMethod},
    quality_measures::QualityMeasuresService,
};
use crate::pb::{self, quality_measures_server::QualityMeasuresServer};

/// Keeps request messages encoded and encodes the summary with prost.
#[derive(Debug, Default)]
struct EncodedRequestCodec;

impl Codec for EncodedRequestCodec {
    type Encode = pb::ImportEncountersResponse;
    type Decode = EncodedMessage;
    type Encoder = ProstEncoder<pb::ImportEncountersResponse>;
    type Decoder = EncodedRequestCodec;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        EncodedRequestCodec
    }
}

impl Decoder for EncodedRequestCodec {
    type Item = EncodedMessage;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<EncodedMessage>, Status> {
        // Split off the buffer the message arrived in; nothing is copied.
        Ok(Some(EncodedMessage(
            buffer.copy_to_bytes(buffer.remaining()),
        )))
    }
}

/// `ImportEncounters` as tonic's client-streaming handling calls it.
struct ImportCall(QualityMeasuresService);

impl ClientStreamingService<EncodedMessage> for ImportCall {
    type Response = pb::ImportEncountersResponse;
    type Future = BoxFuture<Response<pb::ImportEncountersResponse>, Status>;

    fn call(&mut self, request: Request<Streaming<EncodedMessage>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.import(request.into_inner()).await })
    }
}

/// `ImportEncounters`, served by hand.
#[derive(Debug, Clone)]
pub struct ImportMethod(QualityMeasuresService);

impl TakenMethod for ImportMethod {
    const PATH: &'static str = "/cpt.v1.QualityMeasures/ImportEncounters";

    fn serve(
        &self,
        request: http::Request<Body>,
        max_decoding_message_size: usize,
    ) -> BoxFuture<http::Response<Body>, Infallible> {
        let call = ImportCall(self.0.clone());
        let mut grpc = Grpc::new(EncodedRequestCodec)
            .apply_max_message_size_config(Some(max_decoding_message_size), None);
        Box::pin(async move { Ok(grpc.client_streaming(call, request).await) })
    }
}

/// The `cpt.v1.QualityMeasures` service as served: `ImportEncounters` with its
/// messages decoded off the runtime, the rest from the generated server.
pub type QualityMeasuresRoutes =
    MethodRoute<ImportMethod, QualityMeasuresServer<QualityMeasuresService>>;

/// Routes for `service`, refusing request messages over
/// `max_decoding_message_size` bytes on every method.
pub fn quality_measures_routes(
    service: QualityMeasuresService,
    max_decoding_message_size: usize,
) -> QualityMeasuresRoutes {
    let generated = QualityMeasuresServer::new(service.clone())
        .max_decoding_message_size(max_decoding_message_size);
    MethodRoute::new(ImportMethod(service), generated, max_decoding_message_size)
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;

    #[test]
    fn the_route_takes_the_method_the_generated_server_names() {
        let generated = <QualityMeasuresServer<QualityMeasuresService> as NamedService>::NAME;
        assert_eq!(ImportMethod::PATH, format!("/{generated}/ImportEncounters"));
    }
}
