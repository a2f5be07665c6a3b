//! The HTTP API against the real binary: the happy path, and every refusal with its status
//! and stable error code — with the daemon still serving afterwards.

mod common;
#[path = "../../compiler/tests/common/resign.rs"]
mod resign;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn deploy_list_inspect_invoke_replace_delete() {
    let fx = Fixture::new();
    let d = fx.start(&[]);

    let r = d.deploy("arith", ALICE, &arith(1));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["outcome"], "created");
    assert!(r.header("x-request-id").is_some());

    let r = d.req("GET", "/v1/bundles", Some(READER), b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["bundles"][0]["name"], "arith");
    assert_eq!(r.json()["tenant"], "acme");

    let r = d.req("GET", "/v1/bundles/arith", Some(READER), b"");
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["version"], 1);
    assert_eq!(info["kernels"], json!([]));
    assert!(
        info["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "add" && e["params"] == json!(["i32", "i32"]))
    );

    let r = d.invoke("arith", "add", INVOKER, "[1, 2]");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["results"], json!([3]));
    assert_eq!(v["ran_on"], "cpu");
    assert_eq!(v["kernels"], json!([]));
    assert_eq!(v["bundle"]["version"], 1);
    let r = d.invoke("arith", "scale", INVOKER, "[0.1, 3]");
    assert_eq!(r.json()["results"], json!([0.3]));

    // Same bytes again: idempotent. A newer version replaces (POST works like PUT).
    let r = d.deploy("arith", ALICE, &arith(1));
    assert_eq!(
        (r.status, r.json()["outcome"].clone()),
        (200, json!("unchanged"))
    );
    let r = d.req("POST", "/v1/bundles/arith", Some(ALICE), &arith(2));
    assert_eq!(
        (r.status, r.json()["outcome"].clone()),
        (200, json!("replaced"))
    );
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[2, 2]").json()["bundle"]["version"],
        2
    );

    let r = d.req("DELETE", "/v1/bundles/arith", Some(ALICE), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.req("GET", "/v1/bundles/arith", Some(ALICE), b"");
    assert_eq!((r.status, r.code()), (404, "bundle-not-found".into()));
    let r = d.req("DELETE", "/v1/bundles/arith", Some(ALICE), b"");
    assert_eq!(r.status, 404);

    // The audit log saw both deploys, the no-op aside, and the delete.
    let audit = std::fs::read_to_string(fx.data().join("audit.jsonl")).unwrap();
    let actions: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let oks: Vec<_> = actions
        .iter()
        .filter(|a| a["outcome"] == "ok")
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(oks, [("deploy", 1), ("deploy", 2), ("delete", 2)]);
    assert!(
        actions
            .iter()
            .all(|a| a["request_id"].is_string() && a["who"] == "alice")
    );
    assert!(actions[0]["digest"].as_str().unwrap().len() == 64);
}

#[test]
fn authentication_rights_and_tenants() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);

    let r = d.req("GET", "/v1/bundles", None, b"");
    assert_eq!((r.status, r.code()), (401, "missing-token".into()));
    assert!(r.header("www-authenticate").is_some());
    let r = d.req("GET", "/v1/bundles", Some("not-a-token-at-all"), b"");
    assert_eq!((r.status, r.code()), (401, "invalid-token".into()));
    let r = d.raw(b"GET /v1/bundles HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.code()), (401, "invalid-token".into()));

    // Missing rights.
    let r = d.deploy("arith", READER, &arith(2));
    assert_eq!((r.status, r.code()), (403, "forbidden".into()));
    let r = d.invoke("arith", "add", READER, "[1, 2]");
    assert_eq!((r.status, r.code()), (403, "forbidden".into()));
    let r = d.req("DELETE", "/v1/bundles/arith", Some(INVOKER), b"");
    assert_eq!((r.status, r.code()), (403, "forbidden".into()));

    // Tenant B sees nothing of tenant A, with the same answer as for a name nobody uses.
    let missing = d.req("GET", "/v1/bundles/nope", Some(BOB), b"");
    for (method, path, body) in [
        ("GET", "/v1/bundles/arith", &b""[..]),
        ("POST", "/v1/bundles/arith/invoke/add", &b"[1, 2]"[..]),
        ("POST", "/v1/bundles/arith/run", &b"{}"[..]),
        ("DELETE", "/v1/bundles/arith", &b""[..]),
    ] {
        let r = d.req(method, path, Some(BOB), body);
        assert_eq!(
            (r.status, r.code()),
            (404, "bundle-not-found".into()),
            "{method} {path}"
        );
        assert_eq!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .replace("arith", "nope"),
            missing.json()["error"]["message"]
        );
    }
    assert_eq!(
        d.req("GET", "/v1/bundles", Some(BOB), b"").json()["bundles"],
        json!([])
    );
    // Bob deploying his own `arith` does not touch Alice's.
    assert_eq!(d.deploy("arith", BOB, &arith(5)).status, 201);
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 1]").json()["bundle"]["version"],
        1
    );
    assert_eq!(
        d.invoke("arith", "add", BOB, "[1, 1]").json()["bundle"]["version"],
        5
    );
}

#[test]
fn rate_limit_gives_429_with_retry_after() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
    let statuses: Vec<u16> = (0..4)
        .map(|_| d.invoke("arith", "add", SLOW, "[1, 2]").status)
        .collect();
    assert_eq!(&statuses[..2], &[200, 200]);
    let r = d.invoke("arith", "add", SLOW, "[1, 2]");
    assert_eq!((r.status, r.code()), (429, "rate-limited".into()));
    assert!(r.header("retry-after").is_some());
    // Other tokens are unaffected.
    assert_eq!(d.invoke("arith", "add", ALICE, "[1, 2]").status, 200);
}

#[test]
fn bad_requests_are_refused_with_their_codes() {
    let fx = Fixture::new();
    let d = fx.start(&[
        "--max-request-bytes",
        "1KiB",
        "--max-bundle-bytes",
        "256KiB",
    ]);
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
    let check = |r: Resp, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{}",
            r.text()
        );
    };
    check(d.invoke("arith", "add", ALICE, "[1,"), 400, "bad-json");
    check(
        d.invoke("arith", "add", ALICE, "{\"a\": 1}"),
        400,
        "bad-json",
    );
    check(d.invoke("arith", "add", ALICE, "[1]"), 400, "bad-arity");
    check(
        d.invoke("arith", "add", ALICE, "[1, \"x\"]"),
        400,
        "bad-argument",
    );
    check(
        d.invoke("arith", "add", ALICE, "[1.5, 2]"),
        400,
        "bad-argument",
    );
    check(
        d.invoke("arith", "nope", ALICE, "[]"),
        404,
        "unknown-export",
    );
    check(
        d.invoke("arith", "memory", ALICE, "[]"),
        400,
        "not-a-function",
    );
    check(
        d.invoke("ghost", "add", ALICE, "[]"),
        404,
        "bundle-not-found",
    );
    let big = format!("[{}1]", "1, ".repeat(600));
    check(d.invoke("arith", "add", ALICE, &big), 413, "body-too-large");
    check(
        d.deploy("big", ALICE, &vec![0u8; 300 << 10]),
        413,
        "body-too-large",
    );
    // A body larger than declared limit but sent chunked is cut off too.
    let mut chunked = b"POST /v1/bundles/arith/invoke/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token-0123456789\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("800\r\n{}\r\n0\r\n\r\n", " ".repeat(0x800)).as_bytes());
    check(d.raw(&chunked), 413, "body-too-large");
    check(
        d.req("POST", "/v1/bundles/arith/run", Some(ALICE), b"{}"),
        400,
        "not-a-command",
    );
    check(
        d.req(
            "POST",
            "/v1/bundles/arith/run",
            Some(ALICE),
            b"{\"bogus\": 1}",
        ),
        400,
        "bad-json",
    );
    check(
        d.req("GET", "/v2/bundles", Some(ALICE), b""),
        404,
        "no-route",
    );
    check(
        d.req("PATCH", "/v1/bundles/arith", Some(ALICE), b""),
        405,
        "method-not-allowed",
    );
    // Path tricks in names never reach the file system.
    for name in [
        "..",
        "%2e%2e",
        "..%2Fkeys",
        "a%2Fb",
        "UPPER",
        ".hidden",
        "-rf",
        "a%00b",
        "%C3%A9",
    ] {
        check(d.deploy(name, ALICE, &arith(1)), 400, "invalid-name");
        check(d.invoke(name, "add", ALICE, "[1, 2]"), 400, "invalid-name");
    }
    let long = "a".repeat(65);
    check(d.deploy(&long, ALICE, &arith(1)), 400, "invalid-name");
    // Still serving.
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["results"],
        json!([3])
    );
}

#[test]
fn hostile_bundles_are_refused() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    let check = |r: Resp, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{}",
            r.text()
        );
    };
    // Tampered: one flipped byte in the code section, in the manifest, or truncated.
    let good = arith(3);
    let mut tampered = good.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0x40;
    check(d.deploy("arith", ALICE, &tampered), 422, "invalid-bundle");
    let mut tampered = good.clone();
    tampered[40] ^= 1;
    let r = d.deploy("arith", ALICE, &tampered);
    assert_eq!(r.status, 422, "{}", r.text());
    check(
        d.deploy("arith", ALICE, &good[..good.len() / 2]),
        422,
        "invalid-bundle",
    );
    check(
        d.deploy("arith", ALICE, b"not a bundle"),
        422,
        "invalid-bundle",
    );
    check(d.deploy("arith", ALICE, b""), 422, "invalid-bundle");
    // Signed by a key the operator does not trust.
    let untrusted = bundle(ARITH, "arith", 1, None, other_key());
    check(
        d.deploy("arith", ALICE, &untrusted),
        422,
        "untrusted-signer",
    );
    // Expired.
    let expired = bundle(ARITH, "arith", 1, Some(1_000_000), key());
    check(d.deploy("arith", ALICE, &expired), 422, "bundle-expired");
    // Name in the URL differs from the signed name.
    check(d.deploy("other", ALICE, &good), 400, "name-mismatch");
    // Rollback and same-version conflicts.
    assert_eq!(d.deploy("arith", ALICE, &good).status, 201);
    check(d.deploy("arith", ALICE, &arith(2)), 409, "rollback-refused");
    let same_version_other_bytes = bundle(ARITH, "arith", 3, Some(4_000_000_000), key());
    check(
        d.deploy("arith", ALICE, &same_version_other_bytes),
        409,
        "version-conflict",
    );
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["bundle"]["version"],
        3
    );
    // Nothing refused was stored.
    assert_eq!(files_under(&fx.data().join("bundles")), ["acme/arith.twb"]);
    let audit = std::fs::read_to_string(fx.data().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"code\":\"rollback-refused\""), "{audit}");
    assert!(audit.contains("\"code\":\"untrusted-signer\""), "{audit}");
}

const GUESTS: &str = r#"(module
  (memory 1)
  (func (export "spin") (loop $l br $l))
  (func (export "ok") (result i32) i32.const 7)
  (func (export "hog") (result i32)
    ;; grows to the limit and traps when refused
    (block $done
      (loop $more
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        br $more))
    unreachable))"#;

const BIG_MEMORY: &str = r#"(module (memory 64) (func (export "f") (result i32) i32.const 1))"#;

/// Calls `spin` of the `guests` bundle (Alice's) on another thread: its status, error code and
/// how long it took.
fn spin_in_background(d: &Daemon) -> std::thread::JoinHandle<(u16, String, Duration)> {
    let addr = d.addr;
    std::thread::spawn(move || {
        let d = Daemon { addr, child: None };
        let started = Instant::now();
        let r = d.invoke("guests", "spin", ALICE, "[]");
        (r.status, r.code(), started.elapsed())
    })
}

/// Invocations run on the async worker that took the request; a guest still running at the
/// next epoch tick hands the worker's other tasks to another thread. With a single worker, a
/// spinning guest that kept it would hold every other request until its deadline.
#[test]
fn a_spinning_guest_does_not_hold_the_only_worker() {
    let fx = Fixture::new();
    let d = fx.start_with_workers(1, &["--invoke-timeout", "2s"]);
    let guests = bundle(GUESTS, "guests", 1, None, key());
    assert_eq!(d.deploy("guests", ALICE, &guests).status, 201);
    assert_eq!(d.deploy("arith", BOB, &arith(1)).status, 201);
    let spinner = spin_in_background(&d);
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..10 {
        let started = Instant::now();
        let r = d.invoke("arith", "add", BOB, "[1, 2]");
        assert_eq!(r.json()["results"], json!([3]));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "served after {:?} while a guest spins",
            started.elapsed()
        );
    }
    let (status, code, took) = spinner.join().unwrap();
    assert_eq!((status, code.as_str()), (504, "deadline-exceeded"));
    assert!(took >= Duration::from_millis(1900), "{took:?}");
}

#[test]
fn guests_that_spin_trap_or_hog_memory_fail_alone() {
    let fx = Fixture::new();
    let d = fx.start(&["--invoke-timeout", "300ms", "--max-memory", "2MiB"]);
    let guests = bundle(GUESTS, "guests", 1, None, key());
    assert_eq!(d.deploy("guests", ALICE, &guests).status, 201);
    // A module whose initial memory is over the limit can never run: refused at deploy.
    let big = bundle(BIG_MEMORY, "big", 1, None, key());
    let r = d.deploy("big", ALICE, &big);
    assert_eq!(
        (r.status, r.code()),
        (422, "memory-limit-exceeded".into()),
        "{}",
        r.text()
    );
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
    assert_eq!(d.deploy("arith", BOB, &arith(1)).status, 201);

    // A spinning guest is stopped at its deadline while another tenant is served quickly.
    let spinner = spin_in_background(&d);
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..20 {
        let started = Instant::now();
        let r = d.invoke("arith", "add", BOB, "[1, 2]");
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }
    let (status, code, took) = spinner.join().unwrap();
    assert_eq!((status, code.as_str()), (504, "deadline-exceeded"));
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let r = d.invoke("arith", "div", ALICE, "[1, 0]");
    assert_eq!((r.status, r.code()), (422, "guest-trap".into()));
    assert!(r.text().contains("divide by zero"), "{}", r.text());
    let r = d.invoke("guests", "hog", ALICE, "[]");
    assert_eq!(
        (r.status, r.code()),
        (422, "guest-trap".into()),
        "{}",
        r.text()
    );
    // Each failure was alone: the same bundles still serve.
    assert_eq!(
        d.invoke("guests", "ok", ALICE, "[]").json()["results"],
        json!([7])
    );
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["results"],
        json!([3])
    );

    let metrics = d.req("GET", "/metrics", None, b"").text();
    for needle in [
        "tensorwasmd_invocations_total{kind=\"invoke\",outcome=\"deadline-exceeded\"} 1",
        "tensorwasmd_guest_traps_total 2",
        "tensorwasmd_bundles 3",
        "tensorwasmd_http_requests_total{route=\"/v1/bundles/{name}/invoke/{export}\",method=\"POST\",status=\"200\"}",
        "tensorwasmd_http_request_duration_seconds_bucket",
        "tensorwasmd_restore_duration_seconds_count 3",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in:\n{metrics}");
    }
}

#[test]
fn a_busy_host_queues_invocations_then_answers_503() {
    // One invocation slot, held by a guest that spins until its 1s deadline.
    let spin_then = |d: &Daemon| {
        let addr = d.addr;
        let spinner = std::thread::spawn(move || {
            let d = Daemon { addr, child: None };
            d.invoke("guests", "spin", ALICE, "[]").status
        });
        std::thread::sleep(Duration::from_millis(100));
        spinner
    };
    let guests = bundle(GUESTS, "guests", 1, None, key());
    for (queue, expect) in [("100ms", 503), ("0", 503), ("5s", 200)] {
        let fx = Fixture::new();
        let d = fx.start(&[
            "--max-concurrent",
            "1",
            "--invoke-timeout",
            "1s",
            "--queue-timeout",
            queue,
        ]);
        assert_eq!(d.deploy("guests", ALICE, &guests).status, 201);
        assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
        let spinner = spin_then(&d);
        let started = Instant::now();
        let r = d.invoke("arith", "add", ALICE, "[1, 2]");
        let took = started.elapsed();
        assert_eq!(r.status, expect, "queue {queue}: {}", r.text());
        match queue {
            // Waited its queue time for the slot (the spinner holds it about 900ms more), then
            // refused with a hint to retry.
            "100ms" => {
                assert_eq!(r.code(), "overloaded");
                assert_eq!(r.header("retry-after"), Some("1"));
                assert!(took >= Duration::from_millis(90), "{took:?}");
            }
            // No queue: refused at once.
            "0" => assert!(took < Duration::from_millis(500), "{took:?}"),
            // Served as soon as the spinner's deadline freed the slot.
            _ => {
                assert_eq!(r.json()["results"], json!([3]));
                assert!(took >= Duration::from_millis(500), "{took:?}");
            }
        }
        assert_eq!(spinner.join().unwrap(), 504);
        drop(d);
    }
}

#[test]
fn wasi_commands_get_stdin_args_env_and_exit_codes() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    let hello = bundle(HELLO, "hello", 1, None, key());
    assert_eq!(d.deploy("hello", ALICE, &hello).status, 201);
    let r = d.req(
        "POST",
        "/v1/bundles/hello/run",
        Some(INVOKER),
        br#"{"args": ["world"], "env": {"A": "1"}, "stdin": "ignored"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["stdout"], "hello, world\n");
    assert_eq!(v["stdout_encoding"], "utf-8");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["ran_on"], "cpu");
    let r = d.req("POST", "/v1/bundles/hello/run", Some(INVOKER), b"");
    assert_eq!(r.json()["stdout"], "hello, stranger\n");
    assert_eq!(r.json()["exit_code"], 0);
    let r = d.req(
        "POST",
        "/v1/bundles/hello/run",
        Some(INVOKER),
        br#"{"stdin_base64": "!!!"}"#,
    );
    assert_eq!((r.status, r.code()), (400, "bad-request".into()));
    let r = d.req(
        "POST",
        "/v1/bundles/hello/run",
        Some(INVOKER),
        br#"{"env": {"A=B": "1"}}"#,
    );
    assert_eq!((r.status, r.code()), (400, "bad-request".into()));
}

#[test]
fn probes_and_metrics_need_no_token() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    assert_eq!(d.req("GET", "/healthz", None, b"").json()["status"], "ok");
    assert_eq!(d.req("GET", "/readyz", None, b"").json()["status"], "ready");
    let m = d.req("GET", "/metrics", None, b"");
    assert_eq!(m.status, 200);
    assert!(
        m.text().contains("# TYPE tensorwasmd_bundles gauge"),
        "{}",
        m.text()
    );
}

#[test]
fn help_teaches_and_bad_configs_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorwasmd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "Quick start",
        "--trusted",
        "--invoke-timeout",
        "--queue-timeout",
        "rollback",
        "[[token]]",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    let fx = Fixture::new();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tensorwasmd"))
            .args(args)
            .output()
            .unwrap()
    };
    let data = fx.data().display().to_string();
    let tokens = fx.path("tokens.toml").display().to_string();
    let empty = fx.path("empty");
    std::fs::create_dir(&empty).unwrap();
    for (args, needle) in [
        (
            vec!["--tokens", &tokens],
            "--data-dir and --tokens are required",
        ),
        (
            vec!["--data-dir", &data, "--tokens", &tokens],
            "no trusted keys",
        ),
        (
            vec![
                "--data-dir",
                &data,
                "--tokens",
                &tokens,
                "--trusted",
                empty.to_str().unwrap(),
            ],
            "no trusted public keys",
        ),
        (
            vec!["--data-dir", &data, "--tokens", &data, "--trusted", &tokens],
            "not a tensorwasm public key",
        ),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let cfg = fx.path("bad.toml");
    std::fs::write(&cfg, "listen = 5\n").unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // A duration that does not parse, as a flag (a usage error) and in the file.
    let out = run(&["--queue-timeout", "soon"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--queue-timeout"), "{err}");
    std::fs::write(
        &cfg,
        format!("data-dir = {data:?}\ntokens = {tokens:?}\nqueue-timeout = \"soon\"\n"),
    )
    .unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("queue_timeout"), "{err}");
}

/// The sample `samples/wasm/NAME.wasm` built as bundle `bundle_name` (with offload when
/// `offload`), signed by the trusted key.
fn built_sample(
    fx: &Fixture,
    name: &str,
    bundle_name: &str,
    offload: bool,
) -> (Vec<u8>, tensorwasm::pipeline::BuildReport) {
    let key_path = fx.path("build.key");
    std::fs::write(&key_path, key().to_file_text()).expect("key");
    let out = fx.path("sample.twb");
    let opts = tensorwasm::pipeline::BuildOptions {
        input: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../samples/wasm/{name}.wasm")),
        output: out.clone(),
        key: key_path,
        name: Some(bundle_name.into()),
        version: 1,
        expires: None,
        targets: vec![],
        offload,
        oracle_cases: 50,
        oracle_seed: Some(1),
        cubin_archs: vec![],
        emit_ptx: None,
    };
    let report =
        tensorwasm::pipeline::build(&opts, &indicatif::ProgressBar::hidden()).expect("builds");
    (std::fs::read(out).expect("bundle"), report)
}

/// The WASI saxpy sample built with offload, signed by the trusted key.
fn offloaded_saxpy(fx: &Fixture) -> Vec<u8> {
    let (bundle, report) = built_sample(fx, "wasi/saxpy", "saxpy", true);
    assert!(
        report.kernels.iter().any(|k| k.offloaded),
        "{:?}",
        report.kernels
    );
    bundle
}

#[test]
fn a_wasi_cuda_guest_runs_its_kernel_on_the_daemon_backend() {
    let fx = Fixture::new();
    let (bundle, _) = built_sample(&fx, "cuda/saxpy_cuda", "cuda", false);
    let expected = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/wasm/cuda/saxpy_cuda.stdout"),
    )
    .expect("expected output");
    for (backend, ran_on, launches) in [("emulated", "cpu+emulated", 1), ("none", "cpu", 0)] {
        let fx = Fixture::new();
        let d = fx.start(&["--backend", backend]);
        assert_eq!(d.deploy("cuda", ALICE, &bundle).status, 201);
        let r = d.req("POST", "/v1/bundles/cuda/run", Some(INVOKER), b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["stdout"], expected.as_str(), "{v}");
        assert_eq!(v["exit_code"], 0, "{v}");
        assert_eq!(v["ran_on"], ran_on, "{v}");
        let saxpy: Vec<_> = v["kernels"]
            .as_array()
            .expect("kernels")
            .iter()
            .filter(|k| k["kernel"] == "wasi:cuda/saxpy")
            .collect();
        assert_eq!(saxpy.len(), launches as usize, "{v}");
        if launches > 0 {
            assert_eq!(saxpy[0]["dispatched"], launches, "{v}");
            // One metrics label for every guest entry: guests choose their entries' names.
            let metrics = d.req("GET", "/metrics", None, b"").text();
            assert!(
                metrics.contains(
                    "tensorwasmd_kernel_dispatches_total{kernel=\"wasi:cuda\",outcome=\"dispatched\"} 1"
                ),
                "{metrics}"
            );
        }
    }
}

#[test]
fn offloaded_kernels_run_on_the_backend_and_say_so() {
    let fx = Fixture::new();
    let saxpy = offloaded_saxpy(&fx);
    let expected = saxpy_stdout();

    // On the interpreter, with no launch threshold: the sample's kernel runs there.
    let d = fx.start(&["--backend", "emulated", "--min-threads", "1"]);
    assert_eq!(d.deploy("saxpy", ALICE, &saxpy).status, 201);
    let info = d.req("GET", "/v1/bundles/saxpy", Some(ALICE), b"").json();
    assert!(
        info["kernels"].as_array().is_some_and(|k| !k.is_empty()),
        "{info}"
    );
    let r = d.req("POST", "/v1/bundles/saxpy/run", Some(INVOKER), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["stdout"], expected.as_str());
    assert_eq!(v["ran_on"], "cpu+emulated", "{v}");
    let dispatched: u64 = v["kernels"]
        .as_array()
        .expect("kernels")
        .iter()
        .map(|k| k["dispatched"].as_u64().unwrap_or(0))
        .sum();
    assert!(dispatched >= 1, "{v}");
    // Each kernel that ran copied its window (x and y, 4096 floats each) in and back out.
    for k in v["kernels"].as_array().expect("kernels") {
        let ran = k["dispatched"].as_u64().unwrap_or(0);
        let (to, from) = (&k["bytes_to_device"], &k["bytes_from_device"]);
        assert_eq!(to, from, "{v}");
        assert_eq!(to.as_u64().map(|b| b > 0), Some(ran > 0), "{v}");
    }
    let main_kernel = v["kernels"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["dispatched"] == 1))
        .expect("the main kernel ran once");
    assert_eq!(main_kernel["bytes_to_device"], 2 * 4096 * 4, "{v}");
    let metrics = d.req("GET", "/metrics", None, b"").text();
    assert!(
        metrics.contains("tensorwasmd_kernel_dispatches_total{")
            && metrics.contains("outcome=\"dispatched\""),
        "{metrics}"
    );
    drop(d);

    // Backend none: the same output, every kernel declined, all on the CPU.
    let fx2 = Fixture::new();
    let d = fx2.start(&["--backend", "none"]);
    assert_eq!(d.deploy("saxpy", ALICE, &saxpy).status, 201);
    let v = d
        .req("POST", "/v1/bundles/saxpy/run", Some(INVOKER), b"")
        .json();
    assert_eq!(v["stdout"], expected.as_str());
    assert_eq!(v["ran_on"], "cpu");
    assert!(
        v["kernels"]
            .as_array()
            .expect("kernels")
            .iter()
            .all(|k| k["dispatched"] == 0)
    );
    let metrics = d.req("GET", "/metrics", None, b"").text();
    assert!(metrics.contains("outcome=\"no-device\""), "{metrics}");
}

/// What the WASI saxpy sample prints.
fn saxpy_stdout() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/wasi/saxpy.stdout"),
    )
    .expect("expected output")
}

#[test]
fn with_no_launch_slots_every_kernel_declines_quota_and_the_output_is_the_same() {
    let fx = Fixture::new();
    let saxpy = offloaded_saxpy(&fx);
    let expected = saxpy_stdout();
    // The limit as a flag, then as the config file's `max-inflight-launches`.
    let cfg = fx.path("launches.toml");
    std::fs::write(
        &cfg,
        "backend = \"emulated\"\nmin-threads = 1\nmax-inflight-launches = 0\n",
    )
    .unwrap();
    let flags = [
        "--backend",
        "emulated",
        "--min-threads",
        "1",
        "--max-inflight-launches",
        "0",
    ];
    for extra in [&flags[..], &["--config", cfg.to_str().unwrap()][..]] {
        let d = fx.start(extra);
        // The second daemon restores the bundle the first one stored.
        let status = d.deploy("saxpy", ALICE, &saxpy).status;
        assert!(matches!(status, 200 | 201), "{status}");
        let v = d
            .req("POST", "/v1/bundles/saxpy/run", Some(INVOKER), b"")
            .json();
        assert_eq!(v["stdout"], expected.as_str(), "{extra:?}");
        assert_eq!(v["ran_on"], "cpu", "{extra:?}: {v}");
        let metrics = d.req("GET", "/metrics", None, b"").text();
        assert!(
            metrics.contains("outcome=\"quota\""),
            "{extra:?}: {metrics}"
        );
    }

    // Out of range: refused at start with the field named, as a flag and in the file.
    let err = refused_at_start(&fx, &["--max-inflight-launches", "99999999999"]);
    assert!(err.contains("max-inflight-launches"), "{err}");
    std::fs::write(&cfg, "max-inflight-launches = 99999999999\n").unwrap();
    let err = refused_at_start(&fx, &["--config", cfg.to_str().unwrap()]);
    assert!(err.contains("max-inflight-launches"), "{err}");
}

/// Starts the daemon with `extra` flags, expecting it to refuse to start; its stderr.
fn refused_at_start(fx: &Fixture, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorwasmd"))
        .args(["--data-dir"])
        .arg(fx.data())
        .arg("--tokens")
        .arg(fx.path("tokens.toml"))
        .arg("--trusted")
        .arg(fx.path("keys"))
        .args(extra)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_backend_is_refused_at_start() {
    let fx = Fixture::new();
    let err = refused_at_start(&fx, &["--backend", "quantum"]);
    assert!(err.contains("unknown backend `quantum`"), "{err}");
}

/// `tensorwasm remote ARGV…` in-process against the daemon at `addr` with `token`: (exit status or the
/// error's message, stdout, stderr).
fn remote(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    argv: &[&str],
) -> (Result<u8, String>, String, String) {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        remote: tensorwasm::remote_cli::RemoteArgs,
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut full = vec![
        "remote".to_string(),
        "--url".to_string(),
        format!("http://{addr}"),
    ];
    if let Some(t) = token {
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{t}\n")).expect("token file");
        full.push("--token-file".into());
        full.push(path.to_string_lossy().into_owned());
    }
    full.extend(argv.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(&full).unwrap_or_else(|e| panic!("{full:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tensorwasm::remote_cli::remote(cli.remote, &mut out, &mut err)
        .map_err(|e| format!("{e:#}"));
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn the_remote_client_deploys_lists_invokes_runs_and_deletes() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    let arith_path = fx.path("arith.twb");
    std::fs::write(&arith_path, arith(1)).expect("bundle");
    let arith_path = arith_path.to_str().unwrap();
    let hello_path = fx.path("hello.twb");
    std::fs::write(
        &hello_path,
        bundle(
            include_str!("../../samples/wat/hello-wasi.wat"),
            "hello-wasi",
            1,
            None,
            key(),
        ),
    )
    .expect("bundle");

    // Deploy under the signed name (the default), then again: unchanged.
    let (code, out, err) = remote(d.addr, Some(ALICE), &["deploy", arith_path]);
    assert_eq!(code, Ok(0), "{err}");
    assert!(out.starts_with("created arith v1 (digest "), "{out}");
    let (code, out, _) = remote(d.addr, Some(ALICE), &["deploy", arith_path]);
    assert_eq!(code, Ok(0));
    assert!(out.starts_with("unchanged arith v1"), "{out}");
    let (code, _, _) = remote(
        d.addr,
        Some(ALICE),
        &["deploy", hello_path.to_str().unwrap()],
    );
    assert_eq!(code, Ok(0));

    let (code, out, _) = remote(d.addr, Some(READER), &["list"]);
    assert_eq!(code, Ok(0));
    assert!(out.starts_with("tenant acme: 2 bundle(s)\n"), "{out}");
    assert!(
        out.contains("  arith ") && out.contains("  hello-wasi "),
        "{out}"
    );
    let (code, out, _) = remote(d.addr, Some(READER), &["--json", "list"]);
    assert_eq!(code, Ok(0));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["bundles"].as_array().map(Vec::len), Some(2), "{v}");
    let (code, out, _) = remote(d.addr, Some(READER), &["show", "arith"]);
    assert_eq!(code, Ok(0));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["version"], 1, "{v}");

    let (code, out, err) = remote(
        d.addr,
        Some(INVOKER),
        &["invoke", "arith", "add", "--args", "[1, 2]", "--stats"],
    );
    assert_eq!(code, Ok(0), "{err}");
    assert_eq!(out, "[3]\n");
    assert!(err.contains("ran on: cpu"), "{err}");

    // A WASI command: its stdout and stderr pass through, its exit code is the status.
    let (code, out, _) = remote(d.addr, Some(INVOKER), &["run", "hello-wasi", "--", "world"]);
    assert_eq!(code, Ok(1), "hello-wasi exits with its argument count");
    assert_eq!(out, "hello, world\n");

    // Refusals carry the daemon's code; local mistakes are caught before any request.
    let addr = d.addr;
    let refused = |token: Option<&str>, argv: &[&str], needle: &str| {
        let (code, _, _) = remote(addr, token, argv);
        let msg = code.expect_err("must fail");
        assert!(msg.contains(needle), "{argv:?}: {msg}");
    };
    refused(Some(READER), &["deploy", arith_path], "403 forbidden");
    refused(None, &["list"], "401 missing-token");
    refused(
        Some("not-a-token-at-all-000"),
        &["list"],
        "401 invalid-token",
    );
    refused(Some(BOB), &["show", "arith"], "404 bundle-not-found");
    refused(Some(READER), &["show", "../x"], "400 invalid-name");
    refused(
        Some(INVOKER),
        &["invoke", "arith", "add", "--args", "[1]"],
        "400 bad-arity",
    );
    refused(
        Some(INVOKER),
        &["invoke", "arith", "div", "--args", "[1, 0]"],
        "422 guest-trap",
    );
    refused(
        Some(INVOKER),
        &["invoke", "arith", "add", "--args", "[1,"],
        "--args is not JSON",
    );
    refused(
        Some(INVOKER),
        &["invoke", "arith", "add", "--args", "{}"],
        "--args must be a JSON array",
    );
    refused(Some(INVOKER), &["run", "arith"], "400 not-a-command");
    refused(
        Some(ALICE),
        &["deploy", fx.path("tokens.toml").to_str().unwrap()],
        "is not a readable bundle",
    );

    let (code, out, _) = remote(d.addr, Some(ALICE), &["delete", "arith"]);
    assert_eq!((code, out.as_str()), (Ok(0), "deleted arith\n"));
    refused(Some(READER), &["show", "arith"], "404 bundle-not-found");
    drop(d);
    refused(Some(READER), &["list"], "cannot reach tensorwasmd");
}

/// Writes to both pages of its memory and calls WASI, returning the bytes it found there
/// (always 0 in a fresh instance) plus 1000 × the WASI errno.
const REUSE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "touch") (result i32)
    (local $old i32)
    (local.set $old (i32.add (i32.load (i32.const 16)) (i32.load (i32.const 70000))))
    (i32.store (i32.const 16) (i32.const 7))
    (i32.store (i32.const 70000) (i32.const 9))
    ;; iovec at 0: 4 bytes at 16.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 4))
    (i32.add (local.get $old)
      (i32.mul (i32.const 1000)
        (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))))"#;

#[test]
fn every_invocation_starts_from_fresh_memory_and_may_call_wasi() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    let b = bundle(REUSE, "reuse", 1, None, key());
    assert_eq!(d.deploy("reuse", ALICE, &b).status, 201);
    // Pooled slots are reused, the first 64 KiB zeroed in place and the rest given back to
    // the kernel: neither kind of page keeps a previous invocation's bytes.
    for i in 0..40 {
        let r = d.invoke("reuse", "touch", INVOKER, "[]");
        assert_eq!(r.status, 200, "call {i}: {}", r.text());
        // fd_write to an invocation's null stdout succeeds (errno 0).
        assert_eq!(r.json()["results"], json!([0]), "call {i}");
    }
}

/// A bundle whose kernel table is malformed but signed by a trusted key (the offloaded saxpy,
/// its table edited and the bundle signed again) is refused at deploy with 422 and the field
/// named, and nothing is stored; the daemon goes on serving.
#[test]
fn a_malformed_signed_kernel_table_is_refused_at_deploy() {
    use tensorwasm_bundle::{TrustedKeys, VerifiedBundle};
    let fx = Fixture::new();
    let saxpy = offloaded_saxpy(&fx);
    let trusted = TrustedKeys::new(vec![key().public()]);
    let verified = VerifiedBundle::open(&saxpy, &trusted, u64::MAX / 2).expect("verifies");
    let resign = |edit: &dyn Fn(&mut serde_json::Value)| resign::with_table(&verified, key(), edit);
    let d = fx.start(&["--backend", "emulated"]);
    let bad = resign(&|v| v["kernels"][0]["grid"] = json!([7]));
    let r = d.deploy("saxpy", ALICE, &bad);
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid-bundle".to_string()),
        "{}",
        r.text()
    );
    assert!(r.text().contains("grid loops [7]"), "{}", r.text());
    assert_eq!(
        d.req("GET", "/v1/bundles/saxpy", Some(ALICE), b"").status,
        404,
        "nothing was stored"
    );
    let bad = resign(&|v| v["kernels"][0]["params"] = json!([{"arg": 99}]));
    let r = d.deploy("saxpy", ALICE, &bad);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("parameter 0: argument 99"),
        "{}",
        r.text()
    );
    // The same bundle unedited (signed again the same way) deploys.
    let good = resign(&|_| {});
    assert_eq!(d.deploy("saxpy", ALICE, &good).status, 201);
    assert_eq!(d.req("GET", "/healthz", None, b"").status, 200);
}
