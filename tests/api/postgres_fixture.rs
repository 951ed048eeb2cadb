//! A PostgreSQL database of a test's own, made fresh and dropped afterwards,
//! that the test can make unreachable and reachable again without touching
//! the databases of tests running beside it.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Where PostgreSQL is looked for unless `CPTD_TEST_POSTGRES` names another
/// server; it must let this user create and drop databases.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Tells apart the databases one test process makes in the same nanosecond.
static DATABASES_MADE: AtomicUsize = AtomicUsize::new(0);

/// A database made for one test, dropped when this is dropped.
pub struct TestDatabase {
    /// The administrative connection string the database was made through.
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates a database with a name of its own. Panics, saying so, when
    /// PostgreSQL cannot be reached: a store test must not pass without one.
    pub async fn create() -> TestDatabase {
        let server = std::env::var("CPTD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.into());
        assert!(
            server.starts_with("postgres://") || server.starts_with("postgresql://"),
            "CPTD_TEST_POSTGRES must be a postgres:// URL, not {server:?}"
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is past 1970")
            .as_nanos();
        let name = format!(
            "cptd_test_{}_{}_{nanos}",
            std::process::id(),
            DATABASES_MADE.fetch_add(1, Ordering::Relaxed)
        );
        administer(&server, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        TestDatabase { server, name }
    }

    /// The connection string of this database, for `--database-url`: the
    /// administrative one with its database name replaced.
    pub fn url(&self) -> String {
        let (address, query) = match self.server.split_once('?') {
            Some((address, query)) => (address, format!("?{query}")),
            None => (self.server.as_str(), String::new()),
        };
        let authority = address.find("://").map_or(0, |scheme_end| scheme_end + 3);
        let server = match address[authority..].find('/') {
            Some(path) => &address[..authority + path],
            None => address,
        };
        format!("{server}/{}{query}", self.name)
    }

    /// Makes the database unreachable: new connections are refused and those
    /// open are ended, as when its server goes away.
    pub async fn refuse_connections(&self) {
        let name = &self.name;
        administer(
            &self.server,
            &format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot cut {name} off: {error}"));
    }

    /// Makes the database reachable again after [`TestDatabase::refuse_connections`].
    pub async fn allow_connections(&self) {
        let name = &self.name;
        administer(
            &self.server,
            &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot reopen {name}: {error}"));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a test's runtime, which must not be blocked on
        // from within, so the drop gets a thread and a runtime of its own.
        let server = self.server.clone();
        let drop_database = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database")
                .block_on(administer(&server, &drop_database))
        })
        .join();
        // A panic here, perhaps while a failed test unwinds, would abort the
        // whole test binary; a database left over is only untidy.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// Runs `statements` on the administrative connection `server`. An
/// unreachable server is an error that says the store tests need one.
async fn administer(server: &str, statements: &str) -> Result<(), String> {
    let mut config: tokio_postgres::Config = server.parse().map_err(|error| {
        format!("CPTD_TEST_POSTGRES {server:?} is not a connection string: {error}")
    })?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|error| {
            format!(
                "PostgreSQL is not reachable at {server} ({error}); the store tests need it: \
             start it, or set CPTD_TEST_POSTGRES to one that is"
            )
        })?;
    let connection = tokio::spawn(connection);
    let done = client
        .batch_execute(statements)
        .await
        .map_err(|error| error.to_string());
    drop(client);
    let _ = connection.await;
    done
}
