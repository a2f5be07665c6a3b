//! Prometheus metrics (`GET /metrics`, text exposition format via `prometheus-client`).
//!
//! Label values come from fixed sets (route templates, not raw paths; outcome codes), so a
//! client cannot grow the number of series. Kernel dispatch counters are absent until GPU
//! dispatch exists: every invocation runs on the CPU today.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template (e.g. `/v1/bundles/{name}`), or `unmatched`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Response status.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
}

/// Labels of a guest invocation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    /// `invoke` or `run`.
    pub kind: &'static str,
    /// `ok` or the error code.
    pub outcome: &'static str,
}

/// Labels of a kernel dispatch.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DispatchLabels {
    /// The kernel (PTX entry) name.
    pub kernel: String,
    /// `dispatched` or the decline reason (`no-device`, `below-threshold`, `alias`, ...).
    pub outcome: String,
}

/// Labels of a refused request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `rate-limited`, `overloaded`, `connection-limit`.
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~6.5 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// HTTP request latency by route.
    pub latency: HistogramFamily<RouteLabels>,
    /// Guest invocations by kind and outcome.
    pub invocations: Family<InvocationLabels, Counter>,
    /// Guest traps (a subset of invocations).
    pub traps: Counter,
    /// Requests refused before reaching a guest.
    pub refused: Family<ReasonLabels, Counter>,
    /// Deployed bundles, all tenants.
    pub bundles: Gauge,
    /// Bundle restore time (verify, decompress, deserialize, link).
    pub restore_seconds: Histogram,
    /// Open connections.
    pub connections: Gauge,
    /// Invocations running now.
    pub in_flight: Gauge,
    /// Kernel dispatch calls by kernel and outcome.
    pub dispatches: Family<DispatchLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tensorwasmd");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let invocations = Family::<InvocationLabels, Counter>::default();
        let traps = Counter::default();
        let refused = Family::<ReasonLabels, Counter>::default();
        let bundles = Gauge::default();
        let restore_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let connections = Gauge::default();
        let in_flight = Gauge::default();
        let dispatches = Family::<DispatchLabels, Counter>::default();
        registry.register(
            "kernel_dispatches",
            "Offloaded loop nests reached, by kernel and outcome (dispatched, or why declined)",
            dispatches.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "invocations",
            "Guest invocations by kind (invoke, run) and outcome (ok or error code)",
            invocations.clone(),
        );
        registry.register("guest_traps", "Guest traps", traps.clone());
        registry.register(
            "refused",
            "Requests refused before reaching a guest, by reason",
            refused.clone(),
        );
        registry.register("bundles", "Deployed bundles, all tenants", bundles.clone());
        registry.register(
            "restore_duration_seconds",
            "Bundle restore time: verify, decompress, deserialize, link",
            restore_seconds.clone(),
        );
        registry.register("connections", "Open HTTP connections", connections.clone());
        registry.register(
            "invocations_in_flight",
            "Guest invocations running now",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            invocations,
            traps,
            refused,
            bundles,
            restore_seconds,
            connections,
            in_flight,
            dispatches,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a refused request.
    pub fn refuse(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }
}
