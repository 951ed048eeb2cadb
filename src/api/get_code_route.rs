//! `GetCode` answered with messages encoded once per snapshot.
//!
//! The generated `CodeLookupServer` encodes every answer from a `pb::Code`
//! built for the call. [`CodeLookupRoutes`] sits in front of it and takes
//! `GetCode` itself ([`super::method_route`]), through tonic's own unary
//! handling but with a codec that writes the kept encoding of the answer
//! ([`SnapshotAnswers::encoded_code`]); every other method goes to the
//! generated server unchanged. Request decoding, size limits, status codes and
//! error details are those of the generated path.
//!
//! [`SnapshotAnswers::encoded_code`]: super::snapshot_answers::SnapshotAnswers::encoded_code

use std::convert::Infallible;

use prost::bytes::BufMut;
use tonic::{
    Request, Response, Status,
    body::Body,
    codec::{Codec, EncodeBuf, Encoder},
    codegen::{BoxFuture, http},
    server::{Grpc, UnaryService},
};
use tonic_prost::ProstDecoder;

use super::{
    code_lookup::CodeLookupService,
    method_route::{EncodedMessage, MethodRoute, TakenMethod},
};
use crate::pb::{self, code_lookup_server::CodeLookupServer};

/// Decodes requests with prost and writes answers already encoded.
#[derive(Debug, Default)]
struct EncodedAnswerCodec;

impl Codec for EncodedAnswerCodec {
    type Encode = EncodedMessage;
    type Decode = pb::GetCodeRequest;
    type Encoder = EncodedAnswerCodec;
    type Decoder = ProstDecoder<pb::GetCodeRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedAnswerCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

impl Encoder for EncodedAnswerCodec {
    type Item = EncodedMessage;
    type Error = Status;

    fn encode(&mut self, item: EncodedMessage, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buffer.put_slice(&item.0);
        Ok(())
    }
}

/// `GetCode` as tonic's unary handling calls it.
struct GetCodeAnswer(CodeLookupService);

impl UnaryService<pb::GetCodeRequest> for GetCodeAnswer {
    type Response = EncodedMessage;
    type Future = BoxFuture<Response<EncodedMessage>, Status>;

    fn call(&mut self, request: Request<pb::GetCodeRequest>) -> Self::Future {
        let answer = self.0.get_code_encoded(request.into_inner());
        Box::pin(std::future::ready(answer))
    }
}

/// `GetCode`, served by hand.
#[derive(Debug, Clone)]
pub struct GetCodeMethod(CodeLookupService);

impl TakenMethod for GetCodeMethod {
    const PATH: &'static str = "/cpt.v1.CodeLookup/GetCode";

    fn serve(
        &self,
        request: http::Request<Body>,
        max_decoding_message_size: usize,
    ) -> BoxFuture<http::Response<Body>, Infallible> {
        let answer = GetCodeAnswer(self.0.clone());
        let mut grpc = Grpc::new(EncodedAnswerCodec)
            .apply_max_message_size_config(Some(max_decoding_message_size), None);
        Box::pin(async move { Ok(grpc.unary(answer, request).await) })
    }
}

/// The `cpt.v1.CodeLookup` service as served: `GetCode` from kept encodings,
/// the rest from the generated server.
pub type CodeLookupRoutes = MethodRoute<GetCodeMethod, CodeLookupServer<CodeLookupService>>;

/// Routes for `service`, refusing request messages over
/// `max_decoding_message_size` bytes on every method.
pub fn code_lookup_routes(
    service: CodeLookupService,
    max_decoding_message_size: usize,
) -> CodeLookupRoutes {
    let generated =
        CodeLookupServer::new(service.clone()).max_decoding_message_size(max_decoding_message_size);
    MethodRoute::new(GetCodeMethod(service), generated, max_decoding_message_size)
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;

    #[test]
    fn the_route_takes_the_method_the_generated_server_names() {
        let generated = <CodeLookupServer<CodeLookupService> as NamedService>::NAME;
        assert_eq!(GetCodeMethod::PATH, format!("/{generated}/GetCode"));
    }
}
