//! TLS, mutual TLS, callers and roles, through the real binary with
//! certificates made here.

use std::{net::SocketAddr, path::Path, time::Duration};

use cptd::pb::{
    GetCodeRequest, GetPerformanceRequest, ListMeasuresRequest, RecordEncounterRequest,
    code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    binary::{ServerProcess, json_field, run_to_end},
    helpers::sha256_hex,
    metrics::{parse, scrape, value},
};

/// A certificate authority made for one test.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
struct Pair {
    certificate: String,
    key: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for the server at `localhost` and 127.0.0.1.
    fn server(&self) -> Pair {
        self.server_until(2100)
    }

    /// A server certificate that expires on the first day of `year`.
    fn server_until(&self, year: i32) -> Pair {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        self.sign(params)
    }

    /// A client certificate whose subject CN is `name`.
    fn client(&self, name: &str) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes the server's TLS files into `dir` and returns the flags naming them.
fn tls_flags(dir: &Path, server: &Pair, client_ca: Option<&TestCa>) -> Vec<String> {
    std::fs::write(dir.join("server.pem"), &server.certificate).unwrap();
    std::fs::write(dir.join("server.key"), &server.key).unwrap();
    let mut flags = vec![
        "--tls-cert".to_string(),
        dir.join("server.pem").display().to_string(),
        "--tls-key".to_string(),
        dir.join("server.key").display().to_string(),
    ];
    if let Some(ca) = client_ca {
        std::fs::write(dir.join("client-ca.pem"), ca.pem()).unwrap();
        flags.push("--tls-client-ca".to_string());
        flags.push(dir.join("client-ca.pem").display().to_string());
    }
    flags
}

fn start(flags: &[String]) -> ServerProcess {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    ServerProcess::start(&flags)
}

/// A TLS connection trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    address: SocketAddr,
    ca: &TestCa,
    identity: Option<&Pair>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(&pair.certificate, &pair.key));
    }
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls)?
        .connect()
        .await
}

async fn get_code(channel: Channel, token: Option<&str>) -> Result<String, tonic::Status> {
    let mut request = Request::new(GetCodeRequest {
        code: "64483".to_string(),
        ..Default::default()
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let code = CodeLookupClient::new(channel).get_code(request).await?;
    Ok(code.into_inner().code)
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cptd test CA");
    let server = start(&tls_flags(dir.path(), &ca.server(), None));

    let channel = tls_channel(server.address, &ca, None).await.unwrap();
    assert_eq!(get_code(channel, None).await.unwrap(), "64483");

    let plain = Endpoint::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The client hears a protocol error; what matters is that nothing is served.
    assert!(get_code(plain, None).await.is_err());

    let stranger = TestCa::new("another CA");
    assert!(tls_channel(server.address, &stranger, None).await.is_err());
}

#[tokio::test]
async fn mutual_tls_accepts_certificates_of_the_client_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cptd test CA");
    let clients = TestCa::new("client CA");
    let server = start(&tls_flags(dir.path(), &ca.server(), Some(&clients)));

    let client = clients.client("billing.example");
    let channel = tls_channel(server.address, &ca, Some(&client))
        .await
        .unwrap();
    assert_eq!(get_code(channel, None).await.unwrap(), "64483");

    let without_certificate = tls_channel(server.address, &ca, None).await;
    let refused = match without_certificate {
        Ok(channel) => get_code(channel, None).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate was served");

    let forged = TestCa::new("client CA").client("billing.example");
    let refused = match tls_channel(server.address, &ca, Some(&forged)).await {
        Ok(channel) => get_code(channel, None).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a certificate of another CA was served");
}

fn write_policy(dir: &Path) -> String {
    let policy = format!(
        "[[caller]]\nname = \"lookup-service\"\nroles = [\"reader\"]\ntoken_sha256 = \"{}\"\n\n\
         [[caller]]\nname = \"billing\"\nroles = [\"recorder\"]\ntoken_sha256 = \"{}\"\n\n\
         [[caller]]\nname = \"dashboard\"\nroles = [\"quality\"]\ncertificate_name = \"dashboard.example\"\n\n\
         [[caller]]\nname = \"ops\"\nroles = [\"admin\"]\ntoken_sha256 = \"{}\"\n",
        sha256_hex("reader-token"),
        sha256_hex("recorder-token"),
        sha256_hex("admin-token"),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    path.display().to_string()
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// The status code of one call of each kind of method, with `token`.
async fn codes_for(channel: &Channel, token: Option<&str>) -> [Code; 4] {
    let mut lookup = CodeLookupClient::new(channel.clone());
    let mut quality = QualityMeasuresClient::new(channel.clone());
    fn code<T>(result: Result<T, tonic::Status>) -> Code {
        match result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }
    let lookup_code = code(
        lookup
            .get_code(with_token(
                GetCodeRequest {
                    code: "64483".into(),
                    ..Default::default()
                },
                token,
            ))
            .await,
    );
    let measures = code(
        quality
            .list_measures(with_token(ListMeasuresRequest::default(), token))
            .await,
    );
    // An empty encounter: a caller with the role hears INVALID_ARGUMENT, which
    // proves it got past the check without storing anything.
    let record = code(
        quality
            .record_encounter(with_token(RecordEncounterRequest::default(), token))
            .await,
    );
    let report = code(
        quality
            .get_performance(with_token(GetPerformanceRequest::default(), token))
            .await,
    );
    [lookup_code, measures, record, report]
}

#[tokio::test]
async fn each_method_needs_its_role_and_unknown_callers_are_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cptd test CA");
    let clients = TestCa::new("client CA");
    let mut flags = tls_flags(dir.path(), &ca.server(), Some(&clients));
    flags.extend(["--auth-policy".to_string(), write_policy(dir.path())]);
    let server = start(&flags);
    let anonymous_client = clients.client("nobody.example");
    let channel = tls_channel(server.address, &ca, Some(&anonymous_client))
        .await
        .unwrap();

    use Code::{InvalidArgument as Served, PermissionDenied as Denied};
    assert_eq!(
        codes_for(&channel, Some("reader-token")).await,
        [Code::Ok, Code::Ok, Denied, Denied]
    );
    assert_eq!(
        codes_for(&channel, Some("recorder-token")).await,
        [Denied, Denied, Served, Denied]
    );
    assert_eq!(
        codes_for(&channel, Some("admin-token")).await,
        [Code::Ok, Code::Ok, Served, Served]
    );
    let unauthenticated = [Code::Unauthenticated; 4];
    assert_eq!(codes_for(&channel, Some("guessed")).await, unauthenticated);
    // The certificate names no caller of the policy and no token is sent.
    assert_eq!(codes_for(&channel, None).await, unauthenticated);

    // A certificate named in the policy is its caller.
    let dashboard = clients.client("dashboard.example");
    let dashboard = tls_channel(server.address, &ca, Some(&dashboard))
        .await
        .unwrap();
    assert_eq!(
        codes_for(&dashboard, None).await,
        [Denied, Denied, Denied, Served]
    );

    // Health stays open to probes.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1, "SERVING");

    // Refusals name no token.
    let refused = get_code(channel, Some("guessed-secret")).await.unwrap_err();
    assert!(!refused.message().contains("guessed-secret"));
    assert!(
        server
            .log_lines()
            .iter()
            .all(|line| !line.contains("guessed-secret"))
    );
}

#[tokio::test]
async fn a_rotated_certificate_is_served_after_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new("old CA");
    let mut flags = tls_flags(dir.path(), &old_ca.server_until(2040), None);
    flags.extend(["--metrics-listen".to_string(), "127.0.0.1:0".to_string()]);
    let mut server = start(&flags);
    let listening = server.wait_for_log(|line| line.contains("metrics listening"));
    let metrics = json_field(&listening, "address").unwrap();
    let expiry = || async {
        let text = scrape(&metrics).await;
        value(
            &parse(&text),
            "cptd_tls_certificate_expiry_timestamp_seconds",
            &[],
        )
    };
    // 2040-01-01T00:00:00Z
    assert_eq!(expiry().await, Some(2_208_988_800.0));
    let kept = tls_channel(server.address, &old_ca, None).await.unwrap();
    assert_eq!(get_code(kept.clone(), None).await.unwrap(), "64483");

    let new_ca = TestCa::new("new CA");
    tls_flags(dir.path(), &new_ca.server_until(2041), None);
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("TLS certificate reloaded"));
    // 2041-01-01T00:00:00Z: the gauge follows the certificate in force.
    assert_eq!(expiry().await, Some(2_240_611_200.0));

    let fresh = tls_channel(server.address, &new_ca, None).await.unwrap();
    assert_eq!(get_code(fresh, None).await.unwrap(), "64483");
    assert!(
        tls_channel(server.address, &old_ca, None).await.is_err(),
        "new connections get the new certificate"
    );
    // The connection opened before the rotation still answers.
    assert_eq!(get_code(kept, None).await.unwrap(), "64483");

    // The probe of container images checks health over TLS.
    std::fs::write(dir.path().join("new-ca.pem"), new_ca.pem()).unwrap();
    let (probed, stdout, stderr) = run_to_end(&[
        "probe",
        "--address",
        &server.address.to_string(),
        "--tls-ca",
        dir.path().join("new-ca.pem").to_str().unwrap(),
    ]);
    assert!(probed.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "SERVING");

    // A broken file is refused and the rotated certificate stays.
    std::fs::write(dir.path().join("server.pem"), "not a certificate").unwrap();
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("TLS reload refused"));
    let still = tls_channel(server.address, &new_ca, None).await.unwrap();
    assert_eq!(get_code(still, None).await.unwrap(), "64483");
}

#[test]
fn serving_beyond_loopback_needs_tls_and_a_policy_or_an_explicit_allowance() {
    let (status, _, stderr) = run_to_end(&["--listen", "0.0.0.0:0", "--in-memory"]);
    assert!(!status.success());
    assert!(stderr.contains("beyond loopback"), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    assert!(stderr.contains("--auth-policy"), "{stderr}");

    let mut insecure = ServerProcess::start(&["--listen", "0.0.0.0:0", "--allow-insecure"]);
    insecure.wait_for_log(|line| line.contains("--allow-insecure"));
    let port = insecure.address.port().to_string();
    let (probed, stdout, _) = run_to_end(&["probe", "--address", &format!("127.0.0.1:{port}")]);
    assert!(probed.success());
    assert_eq!(stdout.trim(), "SERVING");
    insecure.signal("TERM");
    assert!(insecure.wait().success());
}

#[test]
fn a_bad_policy_refuses_the_start_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        "[[caller]]\nname = \"x\"\nroles = [\"reader\"]\ntoken_sha256 = \"abc\"\n",
    )
    .unwrap();
    let (status, _, stderr) = run_to_end(&[
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--auth-policy",
        path.to_str().unwrap(),
    ]);
    assert!(!status.success());
    assert!(stderr.contains("64 hex digits"), "{stderr}");
}
