//! Spans exported over OTLP to a collector run by the test, continuing the
//! caller's W3C trace context.

use std::sync::{Arc, Mutex};

use cptd::pb::{GetCodeRequest, code_lookup_client::CodeLookupClient};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::{binary::ServerProcess, helpers::connect};

/// A span as received: trace id, parent span id, name.
type ReceivedSpan = (Vec<u8>, Vec<u8>, String);

/// Every span received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ReceivedSpan>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push((span.trace_id, span.parent_span_id, span.name));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

// Several threads: the collector must answer while the test waits for the
// server to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_exports_a_span_that_continues_the_callers_trace() {
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut server =
        ServerProcess::start(&["--otlp-endpoint", &format!("http://{collector_address}")]);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut request = Request::new(GetCodeRequest {
        code: "64483".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_id}-01").parse().unwrap(),
    );
    CodeLookupClient::new(connect(server.address).await)
        .get_code(request)
        .await
        .unwrap();

    // Stopping sends what the exporter still holds.
    server.signal("TERM");
    assert!(server.wait().success());
    let spans = collector.0.lock().unwrap().clone();
    assert!(
        spans
            .iter()
            .any(|(trace, parent, name)| *trace == from_hex(trace_id)
                && *parent == from_hex(parent_id)
                && name == "/cpt.v1.CodeLookup/GetCode"),
        "{spans:?}\n{}",
        server.log_lines().join("\n")
    );
}
