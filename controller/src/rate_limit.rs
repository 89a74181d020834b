//! Client-side rate limiting of the controller's requests to the Kubernetes API, as client-go's
//! `QPS`/`Burst`: a [`TokenBucket`] in front of the kube client's tower stack
//! ([`ApiRateLimitLayer`], used by [`client`]).
//!
//! Each request takes one token. A request that finds the bucket empty *reserves* the next token
//! to come and waits for it in its own future (the bucket's count goes below zero by the
//! reservations not yet due), so requests leave in the order they asked and one waiting request
//! never holds up the others' reservations or the kube client's shared buffer. The wait of a
//! request is the requests reserved ahead of it divided by the rate. Those are few: every caller
//! (a reconcile, an admission review, the watch) waits for its request before it makes the next,
//! so at most the reconciles running (`--max-concurrent-applies`) and the admission reviews in
//! flight are ahead of anyone. A request whose future is dropped while it waits keeps its token
//! spent (a small undercount of the rate, never an overshoot).
//!
//! Watches are long-lived GETs. They take a token too (a reconnect storm is load like any
//! other), but never wait more than [`WATCH_MAX_WAIT`]: the watch is what feeds the controller
//! its work, and a reconnect stuck behind a backlog of status writes would only make the backlog
//! invisible.
//!
//! What this is not: a server-side limit (the API server has its own priority and fairness), or
//! a limit across replicas: each process, and in it each [`client`], has a bucket of its own
//! (the controller builds two: one for its work and the webhook, one for its Lease).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::{Method, Request};
use tower::{BoxError, Layer, Service, ServiceExt as _};

use crate::metrics::Metrics;

/// The lowest rate a bucket runs at; a rate that is not a positive number becomes this one (the
/// command line refuses such values; the bucket only makes sure nothing panics or divides by 0).
pub const MIN_QPS: f64 = 0.01;
/// The highest rate a bucket runs at.
pub const MAX_QPS: f64 = 1_000_000.0;
/// The longest a watch (re)connect waits for its token: see the module docs.
pub const WATCH_MAX_WAIT: Duration = Duration::from_secs(1);
/// The longest any wait is computed as, so that absurd settings never overflow a `Duration` or
/// the timer (a day: no request would still be wanted after it anyway). Reservations beyond it
/// all wait this long.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// A token bucket: at most `burst` tokens, refilled at `qps` tokens per second. Time is
/// passed in (`now`), so it is tested without sleeping.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    /// Below zero by the tokens reserved by requests that are still waiting.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A `burst` of 0 is read as 1 (a request needs a whole token); a
    /// `qps` that is not a positive finite number as [`MIN_QPS`]; rates are kept within
    /// [`MIN_QPS`]..=[`MAX_QPS`].
    pub fn new(qps: f64, burst: u32, now: Instant) -> TokenBucket {
        let qps = if qps.is_finite() && qps > 0.0 {
            qps.clamp(MIN_QPS, MAX_QPS)
        } else {
            MIN_QPS
        };
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// The rate in tokens per second.
    pub fn qps(&self) -> f64 {
        self.qps
    }

    /// Adds the tokens earned since the last update, up to `burst`. A `now` earlier than the last
    /// update (it cannot be, with a monotonic clock) earns nothing and moves nothing back.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        if now > self.at {
            self.at = now;
        }
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
    }

    /// Takes one token for a request made at `now` and returns how long that request must wait
    /// before it goes out: zero while tokens are left, otherwise until its reserved token is due.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        // The deficit stays far from where an f64 loses whole tokens: MAX_WAIT at MAX_QPS.
        let floor = -(MAX_WAIT.as_secs_f64() * self.qps);
        self.tokens = (self.tokens - 1.0).max(floor);
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(-self.tokens / self.qps)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }
}

/// What kind of request is being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A long-lived `GET ...?watch=true`.
    Watch,
    /// Everything else.
    Request,
}

impl Kind {
    /// `Watch` for a GET whose query asks for a watch (`watch=true` or `watch=1`, as the API
    /// server reads it).
    pub fn of<B>(req: &Request<B>) -> Kind {
        let watch = req.method() == Method::GET
            && req
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|kv| matches!(kv, "watch=true" | "watch=1"));
        if watch { Kind::Watch } else { Kind::Request }
    }
}

/// The verb of a request, as a metric label.
fn verb<B>(req: &Request<B>, kind: Kind) -> &'static str {
    match (req.method(), kind) {
        (_, Kind::Watch) => "watch",
        (&Method::GET, _) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

/// One bucket shared by every clone of a client's service.
#[derive(Debug)]
pub struct Limiter {
    bucket: Mutex<TokenBucket>,
}

impl Limiter {
    pub fn new(qps: f64, burst: u32, now: Instant) -> Limiter {
        Limiter {
            bucket: Mutex::new(TokenBucket::new(qps, burst, now)),
        }
    }

    /// How long a request of `kind` made at `now` waits before it goes out (its token is
    /// taken): a watch at most `watch_max_wait`.
    pub fn admit(&self, kind: Kind, now: Instant, watch_max_wait: Duration) -> Duration {
        // The bucket is only arithmetic: a panic elsewhere cannot leave it half-updated.
        let wait = self.bucket.lock().unwrap_or_else(PoisonError::into_inner).reserve(now);
        match kind {
            Kind::Watch => wait.min(watch_max_wait),
            Kind::Request => wait,
        }
    }
}

/// The [`Layer`] that puts a [`Limiter`] in front of a service of the kube client's stack.
#[derive(Debug, Clone)]
pub struct ApiRateLimitLayer {
    limiter: Arc<Limiter>,
    watch_max_wait: Duration,
    metrics: Option<Metrics>,
}

impl ApiRateLimitLayer {
    /// `qps` requests per second on average, `burst` at once after a quiet period.
    pub fn new(qps: f64, burst: u32) -> ApiRateLimitLayer {
        ApiRateLimitLayer {
            limiter: Arc::new(Limiter::new(qps, burst, Instant::now())),
            watch_max_wait: WATCH_MAX_WAIT,
            metrics: None,
        }
    }

    /// Counts requests by verb and the time spent waiting for a token in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> ApiRateLimitLayer {
        self.metrics = Some(metrics);
        self
    }

    /// The longest a watch waits for its token (default [`WATCH_MAX_WAIT`]).
    pub fn with_watch_max_wait(mut self, max: Duration) -> ApiRateLimitLayer {
        self.watch_max_wait = max;
        self
    }
}

impl<S> Layer<S> for ApiRateLimitLayer {
    type Service = ApiRateLimit<S>;

    fn layer(&self, inner: S) -> ApiRateLimit<S> {
        ApiRateLimit {
            inner,
            limiter: self.limiter.clone(),
            watch_max_wait: self.watch_max_wait,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service that waits for a token before each request. `S` must be cheap to clone (a
/// `tower::buffer::Buffer`): the wait happens in the request's own future, which then drives
/// a clone of `S`, so this service is always ready and never blocks its callers on each other.
#[derive(Debug, Clone)]
pub struct ApiRateLimit<S> {
    inner: S,
    limiter: Arc<Limiter>,
    watch_max_wait: Duration,
    metrics: Option<Metrics>,
}

impl<S, B> Service<Request<B>> for ApiRateLimit<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner service is awaited in `call`'s future, after the token.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let kind = Kind::of(&req);
        let wait = self.limiter.admit(kind, Instant::now(), self.watch_max_wait);
        if let Some(m) = &self.metrics {
            m.kube_api_requests.with_label_values(&[verb(&req, kind)]).inc();
            m.kube_api_wait_seconds.observe(wait.as_secs_f64());
        }
        let inner = self.inner.clone();
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.oneshot(req).await.map_err(Into::into)
        })
    }
}

/// A kube client for `config` whose requests pass a token bucket of `qps`/`burst` of its own.
/// The default stack of `kube` (TLS, authentication, retries, tracing) stays as it is; the
/// bucket sits in front of it, behind a buffer that makes it cheap to clone.
pub fn client(config: kube::Config, qps: f64, burst: u32, metrics: &Metrics) -> Result<kube::Client, kube::Error> {
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&ApiRateLimitLayer::new(qps, burst).with_metrics(metrics.clone()))
        .build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Equal to within a microsecond (the bucket counts in f64 seconds).
    fn about(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) <= Duration::from_micros(1)
    }

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_spaces_requests_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5, t0);
        for i in 0..5 {
            assert_eq!(b.reserve(t0), Duration::ZERO, "request {i} of the burst");
        }
        // Then one every 100 ms, each reservation behind the previous one.
        for i in 1..=4u64 {
            let wait = b.reserve(t0);
            assert!(about(wait, ms(100 * i)), "request {} waits {wait:?}", 5 + i);
        }
    }

    #[test]
    fn tokens_come_back_at_the_rate_and_never_beyond_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(4.0, 2, t0);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert!(about(b.reserve(t0), ms(250)));
        // 500 ms later: two tokens earned, one already spent by the reservation above.
        let t1 = t0 + ms(500);
        assert_eq!(b.reserve(t1), Duration::ZERO);
        assert!(about(b.reserve(t1), ms(250)));
        // An hour idle: the bucket holds `burst` tokens, not 14,400.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(b.reserve(t2), Duration::ZERO);
        assert_eq!(b.reserve(t2), Duration::ZERO);
        assert!(about(b.reserve(t2), ms(250)));
    }

    /// A client that sends each request as soon as it may: over any window the requests sent
    /// are at most `burst + qps * window`, and a long run takes `(n - burst) / qps`.
    #[test]
    fn a_steady_stream_is_held_to_the_rate() {
        let (qps, burst, n) = (50.0, 10u32, 1_000u32);
        let t0 = Instant::now();
        let mut b = TokenBucket::new(qps, burst, t0);
        let mut sent = Vec::new();
        let mut now = t0;
        for _ in 0..n {
            now += b.reserve(now);
            sent.push(now);
        }
        let last = sent.last().unwrap().duration_since(t0).as_secs_f64();
        let expected = f64::from(n - burst) / qps;
        assert!((last - expected).abs() < 1e-6, "{last} s, expected {expected} s");
        for (i, start) in sent.iter().enumerate() {
            let window = Duration::from_secs(1);
            let inside = sent[i..]
                .iter()
                .take_while(|t| t.duration_since(*start) < window)
                .count();
            assert!(
                inside as f64 <= f64::from(burst) + qps * window.as_secs_f64() + 1e-9,
                "{inside} requests within 1 s from request {i}"
            );
        }
    }

    #[test]
    fn zero_negative_and_absurd_settings_do_not_panic() {
        let t0 = Instant::now();
        for qps in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            for burst in [0, 1, u32::MAX] {
                let mut b = TokenBucket::new(qps, burst, t0);
                assert!(b.qps() >= MIN_QPS && b.qps() <= MAX_QPS, "{qps} -> {}", b.qps());
                for i in 0..10_000u64 {
                    let wait = b.reserve(t0 + ms(i));
                    assert!(wait <= MAX_WAIT, "qps {qps} burst {burst}: {wait:?}");
                }
            }
        }
        // Burst 0 is one token: the first request goes, the second waits.
        let mut b = TokenBucket::new(1.0, 0, t0);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert!(about(b.reserve(t0), Duration::from_secs(1)));
        // A rate of 0 never divides by zero: it is the slowest rate.
        let mut b = TokenBucket::new(0.0, 1, t0);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert!(about(b.reserve(t0), Duration::from_secs_f64(1.0 / MIN_QPS)));
    }

    #[test]
    fn a_flood_of_reservations_is_capped_and_time_far_ahead_or_behind_is_harmless() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(MIN_QPS, 1, t0);
        let mut last = Duration::ZERO;
        for _ in 0..100_000 {
            let wait = b.reserve(t0);
            assert!(wait >= last && wait <= MAX_WAIT);
            last = wait;
        }
        assert_eq!(last, MAX_WAIT);
        // An instant before the last update (not possible with Instant, but harmless).
        let mut b = TokenBucket::new(1.0, 1, t0 + Duration::from_secs(10));
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert!(about(b.reserve(t0), Duration::from_secs(1)));
        // Years later the bucket is merely full.
        let far = t0 + Duration::from_secs(100 * 365 * 86_400);
        assert_eq!(b.reserve(far), Duration::ZERO);
        assert!(about(b.reserve(far), Duration::from_secs(1)));
    }

    #[test]
    fn a_watch_takes_a_token_but_waits_at_most_its_cap() {
        let t0 = Instant::now();
        let limiter = Limiter::new(1.0, 1, t0);
        let admit = |kind, now| limiter.admit(kind, now, WATCH_MAX_WAIT);
        assert_eq!(admit(Kind::Request, t0), Duration::ZERO);
        for _ in 0..30 {
            admit(Kind::Request, t0);
        }
        // 30 requests are waiting: a watch reconnect goes out after WATCH_MAX_WAIT anyway...
        assert_eq!(admit(Kind::Watch, t0), WATCH_MAX_WAIT);
        // ... and its token counts: the next request waits behind it.
        assert!(about(admit(Kind::Request, t0), Duration::from_secs(32)));
        // A watch that finds a token goes at once.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(admit(Kind::Watch, later), Duration::ZERO);
    }

    #[test]
    fn watches_are_told_from_other_requests() {
        let req = |method: Method, uri: &str| Request::builder().method(method).uri(uri).body(()).unwrap();
        let watch = "/apis/runner.synapsor.ai/v1alpha1/namespaces/a/proposals?&watch=true&timeoutSeconds=290";
        assert_eq!(Kind::of(&req(Method::GET, watch)), Kind::Watch);
        assert_eq!(Kind::of(&req(Method::GET, "/api/v1/pods?watch=1")), Kind::Watch);
        for (method, uri) in [
            (
                Method::GET,
                "/apis/runner.synapsor.ai/v1alpha1/namespaces/a/proposals?limit=500",
            ),
            (Method::GET, "/api/v1/pods?watch=false"),
            (Method::GET, "/api/v1/namespaces/watch=true"),
            (Method::GET, "/api/v1/pods?nowatch=true"),
            (Method::POST, "/api/v1/pods?watch=true"),
        ] {
            assert_eq!(Kind::of(&req(method.clone(), uri)), Kind::Request, "{method} {uri}");
        }
        assert_eq!(verb(&req(Method::GET, watch), Kind::Watch), "watch");
        assert_eq!(verb(&req(Method::PATCH, "/x"), Kind::Request), "patch");
        assert_eq!(verb(&req(Method::PUT, "/x"), Kind::Request), "update");
    }

    /// The service in a real runtime: every request reaches the inner service, in order, a
    /// watch behind a long queue of reservations is not held for longer than its cap, and the
    /// metrics count them by verb.
    #[tokio::test]
    async fn the_layer_passes_requests_through_and_does_not_hold_a_watch() {
        use tower::Layer as _;
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let inner = {
            let seen = seen.clone();
            tower::service_fn(move |req: Request<()>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(req.uri().to_string());
                    Ok::<_, std::convert::Infallible>(req.uri().to_string())
                }
            })
        };
        let metrics = Metrics::new();
        let layer = ApiRateLimitLayer::new(1.0, 3)
            .with_metrics(metrics.clone())
            .with_watch_max_wait(ms(20));
        let mut svc = layer.layer(inner);
        for i in 0..3 {
            let uri = format!("/r{i}");
            let got = svc
                .ready()
                .await
                .unwrap()
                .call(Request::get(uri.as_str()).body(()).unwrap())
                .await
                .unwrap();
            assert_eq!(got, uri);
        }
        // The bucket is empty now: this request reserves a token a second away (it is never
        // awaited, so nothing sleeps), and the watch after it is held 20 ms at most.
        let _queued = svc.call(Request::patch("/r3").body(()).unwrap());
        let started = Instant::now();
        let watch = svc.call(Request::get("/w?watch=true").body(()).unwrap());
        let got = tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "/w?watch=true");
        assert!(started.elapsed() < ms(900), "the watch waited {:?}", started.elapsed());
        assert_eq!(*seen.lock().unwrap(), ["/r0", "/r1", "/r2", "/w?watch=true"]);
        let text = metrics.render();
        assert!(
            text.contains("synapsor_kube_api_requests_total{verb=\"get\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("synapsor_kube_api_requests_total{verb=\"watch\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("synapsor_kube_api_requests_total{verb=\"patch\"} 1"),
            "{text}"
        );
    }
}
