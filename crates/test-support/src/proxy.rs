//! A TCP fault proxy for sync tests: listens on 127.0.0.1 port 0 and forwards bytes both ways
//! to an upstream address, with faults that can be changed while connections are open — down
//! (new connections reset, open ones cut), added latency per chunk, a cut after N bytes
//! upstream, random cuts from a seeded generator, and a bandwidth cap per direction.
//!
//! A cut resets both sockets (`SO_LINGER` zero), so each side sees an error rather than a
//! clean end of stream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Rng;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

/// A token bucket that may go into debt: a caller takes what it needs and sleeps off the debt.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens at `rate` per second; returns how long to wait before sending.
    fn reserve(&mut self, n: usize, rate: u64) -> Duration {
        let rate = rate.max(1) as f64;
        let now = Instant::now();
        // At most a tenth of a second's worth may accumulate while idle.
        let burst = (rate / 10.0).max(1.0);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<SocketAddr>,
    down: AtomicBool,
    delay_micros: AtomicU64,
    /// `u64::MAX` when off.
    cut_after: AtomicU64,
    /// Probability per chunk in millionths, with its generator; `None` when off.
    drops: Mutex<Option<(u64, Rng)>>,
    /// Bytes per second per direction; 0 when off.
    bandwidth: AtomicU64,
    buckets: [Mutex<Bucket>; 2],
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    connections: AtomicU64,
    cuts: AtomicU64,
    /// Bumped to cut every open connection.
    kill: watch::Sender<u64>,
}

impl Shared {
    fn roll_drop(&self) -> bool {
        let mut guard = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some((per_million, rng)) => rng.below(1_000_000) < *per_million,
            None => false,
        }
    }

    fn throttle(&self, direction: Direction, n: usize) -> Duration {
        let rate = self.bandwidth.load(Ordering::SeqCst);
        if rate == 0 {
            return Duration::ZERO;
        }
        let index = usize::from(direction == Direction::Down);
        self.buckets[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(n, rate)
    }

    fn cut_all(&self) {
        self.kill.send_modify(|generation| *generation += 1);
    }
}

/// A running fault proxy. Dropping it stops the listener and cuts every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (port 0) that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (kill, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            down: AtomicBool::new(false),
            delay_micros: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            drops: Mutex::new(None),
            bandwidth: AtomicU64::new(0),
            buckets: [Mutex::new(Bucket::new()), Mutex::new(Bucket::new())],
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            kill,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for a client that speaks HTTP through the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Points new connections at another upstream (a restarted server on a new port).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = upstream;
    }

    /// Down: new connections are reset at once and open ones are cut. Up again: forwards.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.shared.cut_all();
        }
    }

    /// Cuts every open connection now (new ones are accepted as usual).
    pub fn cut_all(&self) {
        self.shared.cut_all();
    }

    /// Waits this long before forwarding each chunk, in both directions.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_micros.store(micros, Ordering::SeqCst);
    }

    /// Cuts each connection once it has forwarded `n` bytes upstream (client to server), in
    /// the middle of whatever it was sending; `None` turns this off.
    pub fn cut_after_bytes(&self, n: Option<u64>) {
        self.shared
            .cut_after
            .store(n.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Cuts a connection with probability `p` per forwarded chunk (either direction), drawing
    /// from a generator seeded with `seed` so a run can be replayed; `p <= 0` turns this off.
    pub fn set_drop_probability(&self, p: f64, seed: u64) {
        let mut guard = self
            .shared
            .drops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = if p > 0.0 {
            // Whole millionths are plenty for a test.
            let per_million = (p.min(1.0) * 1_000_000.0).round() as u64;
            Some((per_million, Rng::new(seed)))
        } else {
            None
        };
    }

    /// Caps each direction at `bytes_per_second` (a token bucket); `None` lifts the cap.
    pub fn set_bandwidth(&self, bytes_per_second: Option<u64>) {
        self.shared
            .bandwidth
            .store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }

    /// Turns every fault off (down, delay, cut, drops, bandwidth).
    pub fn clear_faults(&self) {
        self.set_down(false);
        self.set_delay(Duration::ZERO);
        self.cut_after_bytes(None);
        self.set_drop_probability(0.0, 0);
        self.set_bandwidth(None);
    }

    /// Bytes forwarded from clients to upstream.
    pub fn bytes_up(&self) -> u64 {
        self.shared.bytes_up.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from upstream to clients.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::SeqCst)
    }

    /// Connections accepted (including those reset because the proxy was down).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections a fault cut (down, cut after bytes, random drop).
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.down.store(true, Ordering::SeqCst);
        self.shared.cut_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off briefly and go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(connection(client, shared.clone()));
    }
}

fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    if shared.down.load(Ordering::SeqCst) {
        shared.cuts.fetch_add(1, Ordering::SeqCst);
        reset(&client);
        return;
    }
    let _ = client.set_nodelay(true);
    let upstream_addr = *shared.upstream.lock().unwrap_or_else(|p| p.into_inner());
    let upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream_addr)).await
        {
            Ok(Ok(stream)) => stream,
            // Upstream refuses or does not answer: the client sees its connection reset.
            _ => {
                reset(&client);
                return;
            }
        };
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let sent_up = Arc::new(AtomicU64::new(0));
    let up = pump(
        client_read,
        upstream_write,
        Direction::Up,
        shared.clone(),
        sent_up.clone(),
    );
    let down = pump(
        upstream_read,
        client_write,
        Direction::Down,
        shared,
        sent_up,
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            result = &mut up, if !up_done => {
                if result.is_err() {
                    return;
                }
                up_done = true;
            }
            result = &mut down, if !down_done => {
                if result.is_err() {
                    return;
                }
                down_done = true;
            }
        }
    }
}

/// The connection was cut (by a fault or a peer's reset); the other direction should stop.
#[derive(Debug)]
struct Cut;

enum Step {
    Forwarded,
    Cut,
    Killed,
    Failed,
}

/// Forwards one direction until end of stream (`Ok`, after passing the end on) or a cut.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    shared: Arc<Shared>,
    sent_up: Arc<AtomicU64>,
) -> Result<(), Cut> {
    let mut kill = shared.kill.subscribe();
    let mut buf = vec![0_u8; 16 * 1024];
    let cut = |from: &OwnedReadHalf, to: &OwnedWriteHalf| {
        shared.cuts.fetch_add(1, Ordering::SeqCst);
        reset(from.as_ref());
        reset(to.as_ref());
        Err(Cut)
    };
    loop {
        // Under a bandwidth cap, read in slices of about 50 ms worth so the cap is smooth.
        let rate = shared.bandwidth.load(Ordering::SeqCst);
        let limit = if rate == 0 {
            buf.len()
        } else {
            usize::try_from(rate / 20)
                .unwrap_or(usize::MAX)
                .clamp(256, buf.len())
        };
        let n = tokio::select! {
            read = from.read(&mut buf[..limit]) => match read {
                Ok(0) => {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
                Ok(n) => n,
                Err(_) => {
                    // The peer reset: pass the reset on.
                    reset(to.as_ref());
                    return Err(Cut);
                }
            },
            _ = kill.changed() => return cut(&from, &to),
        };
        let step = tokio::select! {
            step = forward(&mut to, &buf[..n], direction, &shared, &sent_up) => step,
            _ = kill.changed() => Step::Killed,
        };
        match step {
            Step::Forwarded => {}
            Step::Cut | Step::Killed => return cut(&from, &to),
            Step::Failed => {
                reset(from.as_ref());
                return Err(Cut);
            }
        }
    }
}

async fn forward(
    to: &mut OwnedWriteHalf,
    chunk: &[u8],
    direction: Direction,
    shared: &Shared,
    sent_up: &AtomicU64,
) -> Step {
    let mut chunk = chunk;
    let mut cut_now = false;
    if direction == Direction::Up {
        let limit = shared.cut_after.load(Ordering::SeqCst);
        if limit != u64::MAX {
            let allowed = limit.saturating_sub(sent_up.load(Ordering::SeqCst));
            if chunk.len() as u64 >= allowed {
                chunk = &chunk[..usize::try_from(allowed).unwrap_or(0)];
                cut_now = true;
            }
        }
    }
    if shared.roll_drop() {
        return Step::Cut;
    }
    let delay = Duration::from_micros(shared.delay_micros.load(Ordering::SeqCst));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let wait = shared.throttle(direction, chunk.len());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if !chunk.is_empty() {
        if to.write_all(chunk).await.is_err() {
            return Step::Failed;
        }
        let n = chunk.len() as u64;
        match direction {
            Direction::Up => {
                shared.bytes_up.fetch_add(n, Ordering::SeqCst);
                sent_up.fetch_add(n, Ordering::SeqCst);
            }
            Direction::Down => {
                shared.bytes_down.fetch_add(n, Ordering::SeqCst);
            }
        }
    }
    if cut_now {
        // Let the bytes already written leave before the reset discards them.
        let _ = to.flush().await;
        Step::Cut
    } else {
        Step::Forwarded
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a test failure.

    use super::*;

    /// An echo server on 127.0.0.1; returns its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Sends `data` and reads back as much, or fails when the connection is cut.
    async fn round_trip(proxy: &FaultProxy, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy.addr()).await?;
        let (mut r, mut w) = stream.split();
        let write = async {
            w.write_all(data).await?;
            w.shutdown().await
        };
        let mut back = Vec::new();
        let read = r.read_to_end(&mut back);
        let (written, read) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(write, read) })
                .await
                .map_err(|_| std::io::Error::other("timed out"))?;
        written?;
        read?;
        if back.len() != data.len() {
            return Err(std::io::Error::other(format!(
                "got {} of {} bytes back",
                back.len(),
                data.len()
            )));
        }
        Ok(back)
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn forwards_both_ways_and_counts() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let data = payload(100_000);
        assert_eq!(round_trip(&proxy, &data).await.unwrap(), data);
        assert_eq!(proxy.bytes_up(), 100_000);
        assert_eq!(proxy.bytes_down(), 100_000);
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.cuts(), 0);
    }

    #[tokio::test]
    async fn down_resets_new_connections_and_cuts_open_ones() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"hello").await.unwrap();
        let mut five = [0_u8; 5];
        open.read_exact(&mut five).await.unwrap();
        proxy.set_down(true);
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(
            ended.is_err() || rest.is_empty(),
            "open connection kept going"
        );
        assert!(round_trip(&proxy, b"x").await.is_err());
        proxy.set_down(false);
        assert_eq!(round_trip(&proxy, b"again").await.unwrap(), b"again");
        assert!(proxy.cuts() >= 2);
    }

    #[tokio::test]
    async fn cuts_after_n_bytes_upstream() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.cut_after_bytes(Some(1000));
        assert!(round_trip(&proxy, &payload(5000)).await.is_err());
        assert_eq!(proxy.bytes_up(), 1000);
        // Below the limit a connection is untouched.
        let before = proxy.bytes_up();
        assert_eq!(round_trip(&proxy, b"small").await.unwrap(), b"small");
        assert_eq!(proxy.bytes_up() - before, 5);
        proxy.cut_after_bytes(None);
        assert!(round_trip(&proxy, &payload(5000)).await.is_ok());
    }

    #[tokio::test]
    async fn random_drops_follow_the_probability() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set_drop_probability(1.0, 42);
        assert!(round_trip(&proxy, b"doomed").await.is_err());
        proxy.set_drop_probability(0.3, 42);
        let mut failed = 0;
        for _ in 0..20 {
            if round_trip(&proxy, &payload(64)).await.is_err() {
                failed += 1;
            }
        }
        // Each round trip is two chunks (one each way): P(ok) = 0.49.
        assert!((3..=18).contains(&failed), "{failed} of 20 failed");
        proxy.set_drop_probability(0.0, 0);
        assert!(round_trip(&proxy, b"fine").await.is_ok());
    }

    #[tokio::test]
    async fn delay_and_bandwidth_slow_traffic_down() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set_delay(Duration::from_millis(150));
        let started = Instant::now();
        round_trip(&proxy, b"ping").await.unwrap();
        // One chunk each way, each delayed.
        assert!(started.elapsed() >= Duration::from_millis(300));
        proxy.set_delay(Duration::ZERO);

        proxy.set_bandwidth(Some(100_000));
        let started = Instant::now();
        round_trip(&proxy, &payload(60_000)).await.unwrap();
        let elapsed = started.elapsed();
        // 60 kB at 100 kB/s: about 0.6 s (both directions run side by side).
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        proxy.set_bandwidth(None);
    }

    #[tokio::test]
    async fn upstream_can_move() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        // A port nobody listens on: the client is reset.
        let gone = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        proxy.set_upstream(gone_addr);
        assert!(round_trip(&proxy, b"lost").await.is_err());
        proxy.set_upstream(echo_server().await);
        assert_eq!(round_trip(&proxy, b"found").await.unwrap(), b"found");
    }
}
