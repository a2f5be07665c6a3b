//! The HTTP API, versioned under `/v1`, and its router. `docs/API.md` and `docs/openapi.json`
//! describe it; a test checks that [`ROUTES`] and the OpenAPI document list the same routes and
//! that the router answers exactly those methods.
//!
//! Every handler authenticates first (except the probes and `/metrics`), answers errors only
//! through [`ApiError`], and runs guest code only on the blocking pool, under the
//! concurrent-invocation semaphore. Nothing here may panic on a request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::App;
use super::audit::{Record, now_secs};
use super::auth::{Principal, Right};
use super::error::{ApiError, axum_json, from_runtime};
use super::metrics::{InvocationLabels, RequestLabels, RouteLabels};
use super::names::validate_name;
use super::store::{Deployed, admit, is_disk_full};
use crate::invoke::{CommandIo, Stdio};

/// Every route: path template and the methods it answers. The router is built from this table
/// and nothing else.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
    ("/v1/bundles", &["GET"]),
    ("/v1/bundles/{name}", &["GET", "PUT", "POST", "DELETE"]),
    ("/v1/bundles/{name}/invoke/{export}", &["POST"]),
    ("/v1/bundles/{name}/run", &["POST"]),
];

/// Longest export name accepted.
pub const MAX_EXPORT_LEN: usize = 256;

/// A request's id, assigned by the daemon and returned in `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

fn handler(path: &str) -> MethodRouter<Arc<App>> {
    match path {
        "/healthz" => get(healthz),
        "/readyz" => get(readyz),
        "/metrics" => get(metrics),
        "/v1/bundles" => get(list),
        "/v1/bundles/{name}" => get(inspect).put(deploy).post(deploy).delete(remove),
        "/v1/bundles/{name}/invoke/{export}" => post(invoke),
        "/v1/bundles/{name}/run" => post(run),
        // Unreachable: every path in ROUTES is matched above. Answer 404 rather than panic.
        _ => get(not_found),
    }
}

/// The router with its middleware.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for (path, _) in ROUTES {
        router = router.route(path, handler(path));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            app.config.body_timeout,
        ))
        .with_state(app)
}

/// Assigns the request id, and records the request's route, status and latency.
async fn observe(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = app.next_request_id();
    req.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let mut response = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let status = response.status().as_u16();
    app.metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "no such route; see docs/API.md",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not answer that method; see docs/API.md",
    )
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        axum_json(value),
    )
        .into_response()
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "shutting down: finishing in-flight requests",
        )
        .into_response();
    }
    json_response(
        StatusCode::OK,
        &json!({"status": "ready", "bundles": app.registry.len()}),
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

/// Authenticates the bearer token, applies its rate limit, and checks `right`.
fn authorize(app: &App, headers: &HeaderMap, right: Right) -> Result<Arc<Principal>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing-token",
            "send `Authorization: Bearer TOKEN`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let Some(principal) = app.tokens.lookup(token) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "the bearer token is not known",
        ));
    };
    if let Err(retry) = principal.take() {
        app.metrics.refuse("rate-limited");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "this token's request rate is exceeded",
        )
        .retry_after(retry));
    }
    if !principal.has(right) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token lacks the `{}` right", right.as_str()),
        ));
    }
    Ok(principal)
}

fn checked_name(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(|e| ApiError::bad_request("invalid-name", e))
}

type NamePath = Result<Path<String>, axum::extract::rejection::PathRejection>;
type NameExportPath = Result<Path<(String, String)>, axum::extract::rejection::PathRejection>;

fn path_error(e: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::bad_request("invalid-name", e.body_text())
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(too_large());
            }
            let text = error_chain(e.as_ref());
            if text.contains("timeout") || text.contains("timed out") {
                Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body-timeout",
                    "the request body did not arrive in time",
                ))
            } else {
                Err(ApiError::bad_request(
                    "bad-body",
                    format!("cannot read the request body: {text}"),
                ))
            }
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.to_ascii_lowercase()
}

/// Runs `work` under an invocation permit: on this worker thread when `inline` (see
/// `crate::worker`), else after moving the worker's other tasks to another thread.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    inline: bool,
    work: impl FnOnce(&App) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let slots = Arc::clone(&app.invocations);
    // A free slot at once, else wait up to the queue timeout (a burst of short invocations
    // queues briefly instead of failing; a host saturated by long ones still answers 503).
    let permit: Option<OwnedSemaphorePermit> = match Arc::clone(&slots).try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) if app.config.queue_timeout.is_zero() => None,
        Err(_) => tokio::time::timeout(app.config.queue_timeout, slots.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok),
    };
    let permit = permit.ok_or_else(|| {
        app.metrics.refuse("overloaded");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "every invocation slot is busy; retry shortly",
        )
        .retry_after(1)
    })?;
    // An inline invocation runs on this worker thread: most finish in microseconds, and a
    // hand-off to another thread would cost two wake-ups each. One still running at the next
    // epoch tick, and every kernel launch, leave the worker's other tasks to another thread
    // first (`crate::worker`), so a long guest does not stall other connections. Deploys and
    // guests that import WASI (whose host calls block on the runtime) hand off at once.
    let _permit = permit;
    let run = || {
        app.metrics.in_flight.inc();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(app)));
        app.metrics.in_flight.dec();
        out
    };
    let out = if inline {
        run()
    } else {
        crate::worker::blocking(run)
    };
    out.map_err(|_| {
        tracing::error!("an invocation panicked");
        ApiError::internal("the invocation's worker failed")
    })
}

fn lookup(app: &App, principal: &Principal, name: &str) -> Result<Arc<Deployed>, ApiError> {
    let deployed = app
        .registry
        .get(&principal.tenant, name)
        .ok_or_else(|| ApiError::bundle_not_found(name))?;
    Ok(deployed)
}

fn check_not_expired(deployed: &Deployed) -> Result<(), ApiError> {
    match deployed.expires_at {
        Some(at) if now_secs() >= at => Err(ApiError::new(
            StatusCode::GONE,
            "bundle-expired",
            format!(
                "bundle `{}` v{} expired at {at} (unix seconds); deploy a newer one",
                deployed.name, deployed.version
            ),
        )),
        _ => Ok(()),
    }
}

async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Read)?;
    let bundles: Vec<Value> = app
        .registry
        .list(&principal.tenant)
        .iter()
        .map(|d| {
            json!({
                "name": d.name, "version": d.version, "digest": d.digest,
                "bundle_bytes": d.size, "expires_at": d.expires_at,
                "deployed_at": d.info.deployed_at,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"tenant": principal.tenant, "bundles": bundles}),
    ))
}

async fn inspect(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: NamePath,
) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Read)?;
    let Path(name) = path.map_err(path_error)?;
    checked_name(&name)?;
    let deployed = lookup(&app, &principal, &name)?;
    let info = serde_json::to_value(&deployed.info)
        .map_err(|e| ApiError::internal(format!("cannot encode bundle info: {e}")))?;
    Ok(json_response(StatusCode::OK, &info))
}

async fn deploy(
    State(app): State<Arc<App>>,
    axum::Extension(rid): axum::Extension<RequestId>,
    headers: HeaderMap,
    path: NamePath,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Deploy)?;
    let Path(name) = path.map_err(path_error)?;
    checked_name(&name)?;
    let bytes = read_body(&headers, body, app.config.max_bundle_bytes).await?;
    let result = deploy_verified(&app, &principal, &rid, &name, bytes).await;
    if let Err(e) = &result {
        let mut record = Record::new("deploy", "refused", &principal.name);
        record.tenant = Some(&principal.tenant);
        record.bundle = Some(&name);
        record.request_id = Some(&rid.0);
        record.code = Some(e.code);
        record.detail = Some(&e.message);
        if let Err(io) = app.audit.record(&record) {
            tracing::error!(error = %io, "cannot write the audit log");
        }
    }
    result
}

async fn deploy_verified(
    app: &Arc<App>,
    principal: &Arc<Principal>,
    rid: &RequestId,
    name: &str,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant.clone();
    let deployed_at = now_secs();
    let candidate_bytes = bytes.clone();
    let deployed = blocking(app, false, move |app| {
        admit(
            &app.runtime,
            &app.trusted,
            &tenant,
            &candidate_bytes,
            now_secs(),
            deployed_at,
        )
    })
    .await??;
    if deployed.name != name {
        return Err(ApiError::bad_request(
            "name-mismatch",
            format!(
                "the URL names `{name}` but the signed bundle is named `{}`; deploy it under its \
                 signed name",
                deployed.name
            ),
        ));
    }

    // One deploy or delete at a time: the version check and the file write must not interleave.
    let _guard = app.deploy_lock.lock().await;
    let previous = app.registry.get(&principal.tenant, name);
    if let Some(prev) = &previous {
        if deployed.version < prev.version {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "rollback-refused",
                format!(
                    "`{name}` v{} is deployed; refusing to roll back to v{}",
                    prev.version, deployed.version
                ),
            ));
        }
        if deployed.version == prev.version {
            if deployed.digest == prev.digest {
                return Ok(deploy_response(StatusCode::OK, prev, "unchanged"));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "version-conflict",
                format!(
                    "`{name}` v{} is already deployed with different contents; publish a new \
                     version",
                    prev.version
                ),
            ));
        }
    }

    let tenant = principal.tenant.clone();
    let file_name = name.to_string();
    let write = tokio::task::spawn_blocking({
        let app = Arc::clone(app);
        move || app.dir.write(&tenant, &file_name, &bytes)
    })
    .await
    .map_err(|e| ApiError::internal(format!("storage task failed: {e}")))?;
    if let Err(e) = write {
        tracing::error!(error = %e, bundle = name, "cannot store bundle");
        return Err(if is_disk_full(&e) {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage-full",
                "the data directory is full; nothing was stored",
            )
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage-error",
                format!("cannot store the bundle: {e}"),
            )
        });
    }
    let deployed = Arc::new(deployed);
    let total = app.registry.insert(Arc::clone(&deployed));
    app.metrics.bundles.set(total as i64);
    app.metrics
        .restore_seconds
        .observe(deployed.restore_time.as_secs_f64());

    let mut record = Record::new("deploy", "ok", &principal.name);
    record.tenant = Some(&principal.tenant);
    record.bundle = Some(name);
    record.version = Some(deployed.version);
    record.digest = Some(&deployed.digest);
    record.request_id = Some(&rid.0);
    if let Err(e) = app.audit.record(&record) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    tracing::info!(
        tenant = %principal.tenant, bundle = name, version = deployed.version,
        digest = %deployed.digest, who = %principal.name, "deployed"
    );
    let (status, outcome) = match previous {
        Some(_) => (StatusCode::OK, "replaced"),
        None => (StatusCode::CREATED, "created"),
    };
    Ok(deploy_response(status, &deployed, outcome))
}

fn deploy_response(status: StatusCode, d: &Deployed, outcome: &str) -> Response {
    json_response(
        status,
        &json!({
            "outcome": outcome, "name": d.name, "version": d.version, "digest": d.digest,
            "bundle_bytes": d.size, "restore_us": d.info.restore_us,
        }),
    )
}

async fn remove(
    State(app): State<Arc<App>>,
    axum::Extension(rid): axum::Extension<RequestId>,
    headers: HeaderMap,
    path: NamePath,
) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Deploy)?;
    let Path(name) = path.map_err(path_error)?;
    checked_name(&name)?;
    let _guard = app.deploy_lock.lock().await;
    let deployed = lookup(&app, &principal, &name)?;
    let tenant = principal.tenant.clone();
    let file_name = name.clone();
    let app2 = Arc::clone(&app);
    tokio::task::spawn_blocking(move || app2.dir.remove(&tenant, &file_name))
        .await
        .map_err(|e| ApiError::internal(format!("storage task failed: {e}")))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage-error",
                format!("cannot remove the bundle: {e}"),
            )
        })?;
    let (_, total) = app.registry.remove(&principal.tenant, &name);
    app.metrics.bundles.set(total as i64);
    let mut record = Record::new("delete", "ok", &principal.name);
    record.tenant = Some(&principal.tenant);
    record.bundle = Some(&name);
    record.version = Some(deployed.version);
    record.digest = Some(&deployed.digest);
    record.request_id = Some(&rid.0);
    if let Err(e) = app.audit.record(&record) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"outcome": "deleted", "name": name, "version": deployed.version}),
    ))
}

fn count_invocation(app: &App, kind: &'static str, result: &Result<(), ApiError>) {
    let outcome = match result {
        Ok(()) => "ok",
        Err(e) => e.code,
    };
    if outcome == "guest-trap" {
        app.metrics.traps.inc();
    }
    app.metrics
        .invocations
        .get_or_create(&InvocationLabels { kind, outcome })
        .inc();
}

async fn invoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: NameExportPath,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Invoke)?;
    let Path((name, export)) = path.map_err(path_error)?;
    checked_name(&name)?;
    if export.is_empty() || export.len() > MAX_EXPORT_LEN {
        return Err(ApiError::bad_request(
            "invalid-export",
            format!("export names are 1 to {MAX_EXPORT_LEN} bytes"),
        ));
    }
    let deployed = lookup(&app, &principal, &name)?;
    check_not_expired(&deployed)?;
    let body = read_body(&headers, body, app.config.max_request_bytes).await?;
    let args: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad-json",
            format!("arguments must be a JSON array such as [1, 2.5]: {e}"),
        )
    })?;
    let started = Instant::now();
    let target = Arc::clone(&deployed);
    let inline = target.prepared.runs_inline();
    let result = blocking(&app, inline, move |app| {
        app.runtime
            .invoke_prepared_stats(&target.prepared, &export, &args, &app.limits)
            .map_err(|e| from_runtime(&e))
    })
    .await?;
    count_invocation(
        &app,
        "invoke",
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let (results, kernels) = result?;
    let (ran_on, kernels) = kernel_report(&app, &kernels);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "results": results,
            "bundle": {"name": deployed.name, "version": deployed.version},
            "ran_on": ran_on,
            "kernels": kernels,
            "elapsed_us": started.elapsed().as_micros() as u64,
        }),
    ))
}

/// Counts each kernel's dispatches and declines in the metrics, and says where the
/// invocation ran: `cpu`, or `cpu+cuda` / `cpu+emulated` when some kernel ran on the device.
fn kernel_report(app: &App, stats: &[crate::offload::KernelStats]) -> (String, Vec<Value>) {
    let mut device = false;
    let mut out = Vec::with_capacity(stats.len());
    for s in stats {
        // A guest names its own wasi:cuda entries: one label for all of them keeps a tenant
        // from growing the metrics without bound.
        let label = if s.kernel.starts_with(crate::wasi_cuda::IMPORT_MODULE) {
            crate::wasi_cuda::IMPORT_MODULE.to_string()
        } else {
            s.kernel.clone()
        };
        let count = |outcome: &str, n: u64| {
            if n > 0 {
                app.metrics
                    .dispatches
                    .get_or_create(&crate::server::metrics::DispatchLabels {
                        kernel: label.clone(),
                        outcome: outcome.to_string(),
                    })
                    .inc_by(n);
            }
        };
        count("dispatched", s.dispatched);
        for (reason, n) in &s.declined {
            count(reason, *n);
        }
        device |= s.dispatched > 0;
        out.push(json!({
            "kernel": s.kernel,
            "dispatched": s.dispatched,
            "declined": s.declined,
            "device_us": s.device_ns / 1000,
            "bytes_to_device": s.bytes_to_device,
            "bytes_from_device": s.bytes_from_device,
        }));
    }
    let ran_on = if device {
        format!("cpu+{}", app.runtime.host().kind().name())
    } else {
        "cpu".to_string()
    };
    (ran_on, out)
}

/// `POST /v1/bundles/{name}/run` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    stdin: Option<String>,
    stdin_base64: Option<String>,
}

fn output_json(bytes: Vec<u8>) -> (Value, &'static str) {
    match String::from_utf8(bytes) {
        Ok(text) => (Value::String(text), "utf-8"),
        Err(e) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
            "base64",
        ),
    }
}

async fn run(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: NamePath,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authorize(&app, &headers, Right::Invoke)?;
    let Path(name) = path.map_err(path_error)?;
    checked_name(&name)?;
    let deployed = lookup(&app, &principal, &name)?;
    check_not_expired(&deployed)?;
    let body = read_body(&headers, body, app.config.max_request_bytes).await?;
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest {
            args: vec![],
            env: BTreeMap::new(),
            stdin: None,
            stdin_base64: None,
        }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad-json", format!("bad run request: {e}")))?
    };
    let stdin = match (request.stdin, request.stdin_base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad-request",
                "give at most one of stdin, stdin_base64",
            ));
        }
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| ApiError::bad_request("bad-request", format!("stdin_base64: {e}")))?,
        (None, None) => Vec::new(),
    };
    let has_nul = |s: &String| s.contains('\0');
    if request.args.iter().any(has_nul)
        || request
            .env
            .iter()
            .any(|(k, v)| has_nul(k) || has_nul(v) || k.contains('=') || k.is_empty())
    {
        return Err(ApiError::bad_request(
            "bad-request",
            "arguments and environment must not contain NUL; variable names must be non-empty \
             and contain no '='",
        ));
    }
    let mut args = vec![name.clone()];
    args.extend(request.args);
    let io = CommandIo {
        args,
        env: request.env.into_iter().collect(),
        dirs: vec![],
        stdio: Stdio::Capture { stdin },
    };
    let started = Instant::now();
    let target = Arc::clone(&deployed);
    let result = blocking(&app, false, move |app| {
        app.runtime
            .run_prepared(&target.prepared, &io, &app.limits)
            .map_err(|e| from_runtime(&e))
    })
    .await?;
    count_invocation(
        &app,
        "run",
        &result.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let outcome = result?;
    let (ran_on, kernels) = kernel_report(&app, &outcome.kernels);
    let (stdout, stdout_encoding) = output_json(outcome.stdout);
    let (stderr, stderr_encoding) = output_json(outcome.stderr);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "exit_code": outcome.exit_code,
            "stdout": stdout, "stdout_encoding": stdout_encoding,
            "stderr": stderr, "stderr_encoding": stderr_encoding,
            "bundle": {"name": deployed.name, "version": deployed.version},
            "ran_on": ran_on,
            "kernels": kernels,
            "elapsed_us": started.elapsed().as_micros() as u64,
        }),
    ))
}
