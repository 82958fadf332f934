//! A real `kassa hq` process flooded with concurrent large pushes it must refuse (no
//! credential, a wrong one, or a valid one with a body over the push limit), half of them
//! waiting for `100 Continue` and half sending the body regardless: each is answered from its
//! headers, and HQ's resident memory (`VmHWM`, the peak, from `/proc/PID/status`)
//! stays far below what reading the bodies would take. Memory is measured, never time.
#![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

use std::path::PathBuf;
use std::time::Duration;

use protocol::sync::{BATCH_MEDIA_TYPE, MAX_PUSH_BYTES};
use test_support::Process;
use test_support::chain::{addr_of, kassa_cli};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn kassa() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kassa"))
}

const MIB: u64 = 1024 * 1024;

/// Concurrent pushes per round, as in the report that found the hole.
const PUSHES: usize = 8;

/// Each unauthenticated push's declared and sent size: just under the push limit, so only the
/// missing credential can stop HQ from reading it.
const FLOOD_BYTES: u64 = 30 * MIB;

/// How much HQ's peak resident memory may grow over the flood. Reading the bodies would take
/// 8 × 30 MiB = 240 MiB at once; answering from the headers takes some connection buffers.
const GROWTH_BOUND: u64 = 48 * MIB;

/// A field of `/proc/PID/status` (`VmRSS`, `VmHWM`) in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kib * 1024
}

/// Reads an HTTP answer from `reader` (after the `already` bytes read) until its body is
/// complete or the connection ends; returns the status and body, `None` if nothing came.
async fn read_answer(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    mut answer: Vec<u8>,
) -> Option<(u16, String)> {
    let mut buffer = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
            if status == 100 {
                return Some((100, String::new()));
            }
            let length: Option<usize> = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse().ok())
            });
            if length.is_some_and(|n| body.len() >= n) {
                return Some((status, body.to_owned()));
            }
        }
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    Some((status, body.to_owned()))
}

/// Sends a push of `size` bytes of filler with `authorization` (if any) and returns HQ's
/// answer. With `expect_continue` the client waits for HQ's `100 Continue` before it sends the
/// body, as curl does for large bodies, so a refusal from the headers arrives on a clean
/// connection; without, it sends the body regardless, as an attacker would, and HQ may answer
/// and close before the body is all sent (the write side then stops, and a reset may swallow
/// the answer: `None`).
async fn flood_push(
    addr: std::net::SocketAddr,
    authorization: Option<String>,
    size: u64,
    expect_continue: bool,
) -> Option<(u16, String)> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut head = format!(
        "POST /v1/sync/push HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {BATCH_MEDIA_TYPE}\r\nContent-Length: {size}\r\n"
    );
    if let Some(value) = authorization {
        head.push_str(&format!("Authorization: {value}\r\n"));
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).await.ok()?;
    if expect_continue {
        let first = read_answer(&mut reader, Vec::new()).await?;
        if first.0 != 100 {
            return Some(first);
        }
    }
    let sender = tokio::spawn(async move {
        let chunk = vec![0x28_u8; 256 * 1024];
        let mut sent = 0;
        while sent < size {
            let n = usize::try_from((size - sent).min(chunk.len() as u64)).unwrap();
            writer.write_all(&chunk[..n]).await?;
            sent += n as u64;
        }
        writer.flush().await
    });
    let answer = read_answer(&mut reader, Vec::new()).await;
    sender.abort();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_refused_large_pushes_leaves_hq_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hq").display().to_string();
    let printed = kassa_cli(
        &kassa(),
        &[
            "hq".into(),
            "--data".into(),
            data.clone(),
            "store".into(),
            "add".into(),
            "--id".into(),
            "vienna-01".into(),
            "--name".into(),
            "Kassa Wien".into(),
        ],
    )
    .await
    .unwrap();
    let token = printed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap()
        .to_owned();
    // Plain HTTP: the flood writes its requests byte by byte on raw sockets, to see what HQ
    // reads of a body it refuses; TLS underneath changes nothing of that.
    let hq = Process::spawn(
        &kassa(),
        &[
            "hq",
            "--data",
            &data,
            "run",
            "--listen",
            "127.0.0.1:0",
            "--insecure-http",
        ],
    )
    .await
    .unwrap();
    let pid = hq.pid().unwrap();
    let addr = addr_of(&hq.url).unwrap();
    let http = test_support::client();
    // Warm up the paths a refused push takes (a database read for a wrong credential).
    let warm = http
        .post(format!("{}/v1/sync/push", hq.url))
        .bearer_auth("kassa_vienna-01_wrong")
        .header("content-type", BATCH_MEDIA_TYPE)
        .body(vec![0_u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status().as_u16(), 401);
    let before = status_bytes(pid, "VmRSS");

    // Two rounds of eight concurrent pushes: no credential, a wrong one, and a valid one whose
    // declared size is over the push limit.
    let flood = async {
        let mut answers = Vec::new();
        for round in 0..2 {
            let pushes = (0..PUSHES).map(|i| {
                let (authorization, size) = match i % 4 {
                    0 | 1 => (None, FLOOD_BYTES),
                    2 => (Some("Bearer kassa_vienna-01_0000".to_owned()), FLOOD_BYTES),
                    _ => (Some(format!("Bearer {token}")), MAX_PUSH_BYTES + MIB),
                };
                let expected = if i % 4 == 3 { 413 } else { 401 };
                let expect_continue = (i / 4) % 2 == 0;
                async move {
                    let answer = flood_push(addr, authorization, size, expect_continue).await;
                    (round, expected, expect_continue, answer)
                }
            });
            answers.extend(futures_util::future::join_all(pushes).await);
        }
        answers
    };
    // A guard against hanging, not a timed assertion: a healthy run takes seconds.
    let answers = tokio::time::timeout(Duration::from_secs(300), flood)
        .await
        .expect("the flood did not finish");

    let peak = status_bytes(pid, "VmHWM");
    let after = status_bytes(pid, "VmRSS");
    eprintln!(
        "HQ resident memory: {} MiB before, {} MiB peak, {} MiB after the flood",
        before / MIB,
        peak / MIB,
        after / MIB
    );
    assert!(
        peak.saturating_sub(before) <= GROWTH_BOUND,
        "HQ's peak resident memory grew by {} MiB over the flood (bound {} MiB): it read bodies it refuses",
        peak.saturating_sub(before) / MIB,
        GROWTH_BOUND / MIB
    );
    for (round, expected, expect_continue, answer) in answers {
        // A client that sent its body regardless may lose the answer to HQ closing the
        // connection on the unread rest; one that waited always gets it.
        let Some((status, body)) = answer else {
            assert!(
                !expect_continue,
                "round {round}: no answer to a waiting client"
            );
            continue;
        };
        assert_eq!(status, expected, "round {round}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("round {round}: {status} `{body}` is not JSON: {e}"));
        let code = if expected == 413 {
            "body_too_large"
        } else {
            "unauthorized"
        };
        assert_eq!(body["code"], code, "{body}");
    }
    // HQ is still up and serving.
    let metrics = http
        .get(format!("{}/metrics", hq.url))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    hq.kill9().await.unwrap();
}
