//! Starting the real server for a test and talking to it.

use std::{
    net::SocketAddr,
    sync::Once,
    time::{Duration, Instant},
};

use cptd::{
    config::{Config, Secret},
    pb::{
        Code, CodeView, GetCodeRequest, claim_check_client::ClaimCheckClient,
        code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
    },
    server::{self, ServerError},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::postgres_fixture::TestDatabase;

/// How long `spawn_app` keeps trying to reach the server before giving up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

/// A generous bound on anything that should finish promptly; only a guard
/// against a hung test, never an assertion about speed. Generous enough for a
/// 20,000-encounter import through a debug build while other work holds the
/// cores.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

static TRACING: Once = Once::new();

/// Logs stay muted unless `TEST_LOG` is set, so failing tests are readable.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .init();
        }
    });
}

/// A running server and clients connected to it.
pub struct TestApp {
    /// Where the server listens.
    pub address: SocketAddr,
    /// The connection the clients share.
    pub channel: Channel,
    /// `cpt.v1.CodeLookup`.
    pub code_lookup: CodeLookupClient<Channel>,
    /// `grpc.health.v1.Health`.
    pub health: HealthClient<Channel>,
    /// `cpt.v1.QualityMeasures`.
    pub quality_measures: QualityMeasuresClient<Channel>,
    /// `cpt.v1.ClaimCheck`.
    pub claim_check: ClaimCheckClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServerError>>>,
    /// The PostgreSQL database of a server run on one (see
    /// [`spawn_app_with`]); dropped, after the server, with the app.
    _database: Option<TestDatabase>,
}

impl TestApp {
    /// Completes the server's shutdown future, which starts the drain, and
    /// returns at once.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Completes the server's shutdown future and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let server = self
            .server
            .take()
            .expect("the server task is held until stop");
        tokio::time::timeout(HANG_GUARD, server)
            .await
            .expect("server::run did not return after shutdown")
            .expect("the server task panicked")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Starts the real server on `127.0.0.1:0` with the test configuration and
/// connects typed clients to it.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Config::for_tests()).await
}

/// Starts the real server with `config` (its listen address is ignored: the
/// server takes an ephemeral loopback port) and connects typed clients to it.
///
/// With `CPTD_TEST_STORE=postgres`, a server that would keep its encounters
/// in memory keeps them in a fresh PostgreSQL database instead, so that the
/// store's end-to-end tests run against either store (`.ci/run` runs them
/// both ways).
pub async fn spawn_app_with(mut config: Config) -> TestApp {
    init_tracing();
    let database =
        if config.in_memory && std::env::var("CPTD_TEST_STORE").as_deref() == Ok("postgres") {
            let database = TestDatabase::create().await;
            config.in_memory = false;
            config.database_url = Some(Secret(database.url()));
            config.patient_id_key = Some(Secret("ab".repeat(32)));
            Some(database)
        } else {
            None
        };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind an ephemeral port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (shutdown, stop_requested) = oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, config, async move {
        let _ = stop_requested.await;
    }));

    let channel = connect(address).await;
    TestApp {
        address,
        code_lookup: CodeLookupClient::new(channel.clone()),
        health: HealthClient::new(channel.clone()),
        quality_measures: QualityMeasuresClient::new(channel.clone()),
        claim_check: ClaimCheckClient::new(channel.clone()),
        channel,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    }
}

/// Connects to `address`, retrying until the server accepts or the patience runs
/// out.
pub async fn connect(address: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .expect("a socket address makes a valid URI")
        .connect_timeout(Duration::from_secs(1));
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(error) if Instant::now() >= deadline => {
                panic!("the server at {address} did not accept a connection: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The `google.rpc.BadRequest` field violations of `status`, as
/// `(field, description)` pairs in order. Panics when the detail is missing.
pub fn field_violations(status: &tonic::Status) -> Vec<(String, String)> {
    let bad_request = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("status has no google.rpc.BadRequest detail: {status:?}"));
    bad_request
        .field_violations
        .into_iter()
        .map(|violation| (violation.field, violation.description))
        .collect()
}

/// The fields named by the `BadRequest` detail of `status`, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

/// The description of the violation of `field`. Panics, listing what is there,
/// when `field` is not named.
pub fn violation_of(status: &tonic::Status, field: &str) -> String {
    let violations = field_violations(status);
    violations
        .iter()
        .find(|(named, _)| named == field)
        .map(|(_, description)| description.clone())
        .unwrap_or_else(|| panic!("no violation of {field:?} in {violations:?}"))
}

/// Asserts `status` is `INVALID_ARGUMENT` with a violation of `field`, and returns
/// that violation's description.
pub fn assert_invalid_field(status: &tonic::Status, field: &str) -> String {
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "expected INVALID_ARGUMENT: {status:?}"
    );
    violation_of(status, field)
}

/// What every malformed-code message says: the accepted forms, with examples.
pub const FORMS_HINT: &str = "Category II, e.g. 0521F";

/// What `CODE_VIEW_BASIC` keeps of a full `Code`: the code, category, short
/// name, descriptor and status; every other field empty.
pub fn basic_part(full: &Code) -> Code {
    Code {
        code: full.code.clone(),
        category: full.category,
        short_name: full.short_name.clone(),
        descriptor: full.descriptor.clone(),
        status: full.status,
        ..Code::default()
    }
}

/// Each of `codes` as `GetCode` answers it on `as_of`, which is the full view.
pub async fn full_codes(
    client: &mut CodeLookupClient<Channel>,
    codes: &[&str],
    as_of: &str,
) -> Vec<Code> {
    let mut found = Vec::with_capacity(codes.len());
    for code in codes {
        let request = GetCodeRequest {
            code: code.to_string(),
            as_of: as_of.to_string(),
        };
        let answer = client.get_code(request).await;
        found.push(
            answer
                .expect("a code that was listed is found")
                .into_inner(),
        );
    }
    found
}

/// `full` as a request for `view` should answer it. Panics when the basic
/// view would leave every code as it is, since the two views could then pass
/// for each other.
pub fn in_view(full: &[Code], view: CodeView) -> Vec<Code> {
    assert!(
        full.iter().any(|code| *code != basic_part(code)),
        "these codes fill no field beyond the basic ones"
    );
    match view {
        CodeView::Basic => full.iter().map(basic_part).collect(),
        CodeView::Full => full.to_vec(),
        CodeView::Unspecified => panic!("name the view the method defaults to"),
    }
}

/// The hex SHA-256 of a bearer token, as an `--auth-policy` file names it.
pub fn sha256_hex(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
