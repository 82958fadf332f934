//! What a test does when something it needs is missing on this machine (PostgreSQL, Chromium,
//! Node.js): it fails, naming what is missing and how to provide it, unless the run says it may
//! skip (`KASSA_ALLOW_SKIP=1`, never honoured in CI). A skipped test used to pass in 0.00 s
//! with its notice hidden by the test runner, so a run that tested less looked as green as one
//! that tested everything; a failure cannot be missed, and skipping takes a deliberate choice.

use std::time::Duration;

/// The PostgreSQL server the tests use when `KASSA_TEST_POSTGRES` is not set: the local one of
/// the development and CI machines (trust authentication, user `postgres`).
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether this run may skip what it cannot run: `KASSA_ALLOW_SKIP=1`, outside CI.
pub fn skips_allowed() -> bool {
    allowed(
        std::env::var_os("CI").is_some(),
        std::env::var("KASSA_ALLOW_SKIP").ok().as_deref(),
    )
}

fn allowed(ci: bool, allow_skip: Option<&str>) -> bool {
    !ci && allow_skip == Some("1")
}

/// Called by a test that cannot run here (`what` is missing; `remedy` says how to provide it).
/// Panics, failing the test, unless skips are allowed; then prints a notice that the test
/// runner does not hide, and returns, and the caller returns early.
pub fn skip(what: &str, remedy: &str) {
    let why = format!("{what}: {remedy}");
    assert!(
        skips_allowed(),
        "{why}. To run without it on a laptop, set KASSA_ALLOW_SKIP=1 (this test is then skipped, not passed; CI never skips)"
    );
    // Written to the stream itself, not through `eprintln!`, which the test runner captures
    // and shows only for failed tests: a skip stays visible in a green run.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED (KASSA_ALLOW_SKIP=1): {why}"
    );
}

/// The PostgreSQL server for tests: `KASSA_TEST_POSTGRES`, else [`DEFAULT_POSTGRES`] when
/// something listens on its port, else `None` after [`skip`] allowed it (`test` names the test
/// for the notice).
pub async fn postgres_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("KASSA_TEST_POSTGRES") {
        return Some(url);
    }
    let answers = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect("127.0.0.1:5432"),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if answers {
        return Some(DEFAULT_POSTGRES.to_owned());
    }
    skip(
        &format!("{test} needs PostgreSQL, and nothing answers on 127.0.0.1:5432"),
        "start PostgreSQL there (trust authentication for user postgres, a database `test`), or set KASSA_TEST_POSTGRES=postgres://user@host:port/db",
    );
    None
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_an_explicit_allow_skip_outside_ci_lets_a_test_skip() {
        for (ci, allow_skip, expected) in [
            (false, None, false),
            (false, Some(""), false),
            (false, Some("0"), false),
            (false, Some("yes"), false),
            (false, Some("1"), true),
            (true, Some("1"), false),
            (true, None, false),
        ] {
            assert_eq!(
                allowed(ci, allow_skip),
                expected,
                "CI {ci}, KASSA_ALLOW_SKIP {allow_skip:?}"
            );
        }
    }
}
