//! The codec of every cptd method: prost's, except that a request that is not
//! valid protobuf is the caller's fault. prost's codec answers it `INTERNAL`,
//! which reads as a server bug and pages whoever runs the server; the API
//! promises `INVALID_ARGUMENT`. The generated servers and clients use this
//! codec (`build.rs` names it).

use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder};

/// prost's codec with decode failures answered `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Default)]
pub struct ProtobufCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Codec for ProtobufCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = ProtobufDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtobufDecoder(self.0.decoder())
    }
}

/// prost's decoder with its failures answered `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct ProtobufDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for ProtobufDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // prost's message names the message, the field and the fault, never a
        // value, so it is safe to pass on.
        self.0.decode(buffer).map_err(|status| {
            Status::invalid_argument(format!(
                "the request is not a valid protobuf message for this method: {}",
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
