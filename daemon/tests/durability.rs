//! Crashes, restarts, shutdown and hostile connections, against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn sigkill_during_deploys_keeps_every_acknowledged_bundle_and_no_partial_one() {
    let fx = Fixture::new();
    let bundles: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let name = format!("b{i:02}");
            let wat = format!(
                "(module (memory 1) (data (i32.const 0) \"{}\") (func (export \"id\") (result i32) i32.const {i}))",
                "x".repeat(4096 + i * 97)
            );
            (name.clone(), bundle(&wat, &name, 1, None, key()))
        })
        .collect();
    let d = fx.start(&[]);
    let addr = d.addr;
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let acked = Arc::clone(&acked);
        let stop = Arc::clone(&stop);
        let bundles = bundles.clone();
        std::thread::spawn(move || {
            let client = Daemon { addr, child: None };
            for (name, bytes) in &bundles {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A killed daemon answers nothing: the raw client then sees no response.
                let mut stream = match TcpStream::connect(addr) {
                    Ok(s) => s,
                    Err(_) => break,
                };
                let head = format!(
                    "PUT /v1/bundles/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {ALICE}\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(bytes);
                let mut raw = Vec::new();
                let _ = stream.read_to_end(&mut raw);
                match parse_response(&raw) {
                    Some(r) if r.status == 201 => acked.lock().unwrap().push(name.clone()),
                    Some(r) => panic!("deploy {name}: {} {}", r.status, r.text()),
                    None => break,
                }
            }
            drop(client);
        })
    };
    // Let some deploys land, then kill -9 in the middle of the stream.
    let started = Instant::now();
    while acked.lock().unwrap().len() < 8 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    d.signal("KILL");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(d);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 8,
        "only {} deploys acknowledged",
        acked.len()
    );

    let d = fx.start(&[]);
    let listed = d.req("GET", "/v1/bundles", Some(ALICE), b"").json();
    let names: Vec<String> = listed["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    for name in &acked {
        assert!(
            names.contains(name),
            "acknowledged {name} lost; have {names:?}"
        );
    }
    // At most the one in flight may also be there, and then whole: every listed bundle runs.
    assert!(names.len() <= acked.len() + 1, "{names:?} vs {acked:?}");
    for name in &names {
        let i: i64 = name[1..].parse().unwrap();
        let r = d.invoke(name, "id", ALICE, "[]");
        assert_eq!(r.json()["results"], json!([i]), "{name}");
    }
    // No temporary file survives a restart.
    let files = files_under(&fx.data().join("bundles"));
    assert!(files.iter().all(|f| f.ends_with(".twb")), "{files:?}");
}

#[test]
fn restart_reverifies_and_skips_bad_stored_bundles() {
    let fx = Fixture::new();
    {
        let d = fx.start(&[]);
        assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
        assert_eq!(d.deploy("arith", BOB, &arith(4)).status, 201);
    }
    let bundles = fx.data().join("bundles");
    // Tampered on disk, garbage, a stray temp file, and a bad name.
    let mut tampered = arith(2);
    let at = tampered.len() - 50;
    tampered[at] ^= 1;
    std::fs::write(bundles.join("acme/tampered.twb"), &tampered).unwrap();
    std::fs::write(bundles.join("acme/garbage.twb"), b"garbage").unwrap();
    std::fs::write(bundles.join("acme/.tmp-arith-1-2"), b"half").unwrap();
    std::fs::write(bundles.join("acme/Bad Name.twb"), arith(1)).unwrap();
    // Stored under a name that differs from its signed name.
    std::fs::write(bundles.join("acme/renamed.twb"), arith(1)).unwrap();

    let d = fx.start(&[]);
    let list = d.req("GET", "/v1/bundles", Some(ALICE), b"").json();
    assert_eq!(list["bundles"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["bundle"]["version"],
        1
    );
    assert_eq!(
        d.invoke("arith", "add", BOB, "[1, 2]").json()["bundle"]["version"],
        4
    );
    assert!(!bundles.join("acme/.tmp-arith-1-2").exists());
    let audit = std::fs::read_to_string(fx.data().join("audit.jsonl")).unwrap();
    let refused = audit
        .lines()
        .filter(|l| l.contains("\"action\":\"restore\"") && l.contains("\"refused\""))
        .count();
    assert_eq!(refused, 3, "{audit}");
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let fx = Fixture::new();
    let d = fx.start(&["--invoke-timeout", "700ms"]);
    let guests = bundle(
        r#"(module (func (export "spin") (loop $l br $l)))"#,
        "spin",
        1,
        None,
        key(),
    );
    assert_eq!(d.deploy("spin", ALICE, &guests).status, 201);
    let addr = d.addr;
    let in_flight = std::thread::spawn(move || {
        let c = Daemon { addr, child: None };
        c.invoke("spin", "spin", ALICE, "[]")
    });
    std::thread::sleep(Duration::from_millis(200));
    d.signal("TERM");
    let r = in_flight.join().unwrap();
    assert_eq!((r.status, r.code()), (504, "deadline-exceeded".into()));
    let mut d = d;
    let mut child = d.child.take().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn slowloris_and_huge_headers_are_cut_off_while_others_are_served() {
    let fx = Fixture::new();
    let d = fx.start(&["--header-timeout", "500ms", "--max-header-bytes", "8KiB"]);
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);

    // Slowloris: a header line every 100 ms, never finishing the head.
    let mut slow = TcpStream::connect(d.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /v1/bundles/arith/invoke/add HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut closed_after = None;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if slow
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            closed_after = Some(started.elapsed());
            break;
        }
        // Meanwhile, other clients are served.
        if i == 2 {
            assert_eq!(d.invoke("arith", "add", ALICE, "[1, 2]").status, 200);
        }
    }
    let closed_after = closed_after.unwrap_or_else(|| {
        // Writes may still succeed into the socket buffer; the read side shows the close.
        let mut buf = [0u8; 512];
        let _ = slow.read(&mut buf);
        started.elapsed()
    });
    assert!(
        closed_after < Duration::from_secs(3),
        "open for {closed_after:?}"
    );

    // A head larger than the limit: 431, and the daemon goes on.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 << 10)
    );
    assert_eq!(d.raw(huge.as_bytes()).status, 431);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = d.raw(
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 431);
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["results"],
        json!([3])
    );
}

#[test]
fn connections_over_the_limit_are_closed() {
    let fx = Fixture::new();
    let d = fx.start(&["--max-connections", "2", "--header-timeout", "5s"]);
    let a = TcpStream::connect(d.addr).unwrap();
    let b = TcpStream::connect(d.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = TcpStream::connect(d.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(buf.is_empty(), "third connection was served");
    drop((a, b));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.req("GET", "/healthz", None, b"").status, 200);
}

#[test]
fn a_full_disk_refuses_the_deploy_with_507_and_leaves_nothing_behind() {
    let fx = Fixture::new();
    let Some(d) = fx.start_on_small_disk("256k", &[]) else {
        eprintln!(
            "skipped: this host allows no unprivileged user and mount namespace \
             (`unshare --user --map-root-user --mount`), so no small disk can be made"
        );
        return;
    };
    assert_eq!(d.deploy("arith", ALICE, &arith(1)).status, 201);
    // 400 KiB of data that does not compress: the bundle cannot fit in 256 KiB.
    let mut x: u32 = 0x1234_5678;
    let data: String = (0..400 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            format!("\\{:02x}", x & 0xff)
        })
        .collect();
    let wat = format!(
        "(module (memory 8) (data (i32.const 0) \"{data}\") (func (export \"f\") (result i32) i32.const 1))"
    );
    let big = bundle(&wat, "big", 1, None, key());
    assert!(big.len() > 300 * 1024, "{}", big.len());
    let r = d.deploy("big", ALICE, &big);
    assert_eq!(
        (r.status, r.code()),
        (507, "storage-full".into()),
        "{}",
        r.text()
    );
    // Nothing half-written: the data directory (seen through the daemon's own mount
    // namespace) holds the audit log and the one acknowledged bundle, no temporary file.
    let root = std::path::PathBuf::from(format!("/proc/{}/root", d.pid()));
    let data_dir = root.join(fx.data().strip_prefix("/").unwrap());
    let files = files_under(&data_dir);
    assert!(
        files
            .iter()
            .all(|f| !f.contains(".tmp-") && !f.contains("big")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("arith.twb")), "{files:?}");
    // The daemon serves on: the failed bundle is not listed, the stored one runs, and the
    // space the failed write took is free again for a small deploy.
    let list = d.req("GET", "/v1/bundles", Some(ALICE), b"").json();
    assert_eq!(list["bundles"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        d.invoke("arith", "add", ALICE, "[1, 2]").json()["results"],
        json!([3])
    );
    let small = bundle(
        "(module (func (export \"f\") (result i32) i32.const 2))",
        "small",
        1,
        None,
        key(),
    );
    assert_eq!(d.deploy("small", ALICE, &small).status, 201);
}

#[test]
fn each_tenants_bundles_launch_on_a_device_queue_of_their_own() {
    use tensorwasmd::server::store::admit;
    let engine = wasmtime::Engine::new(&tensorwasmd::engine::base_config()).unwrap();
    let runtime = tensorwasmd::invoke::Runtime::new(engine).unwrap();
    let trusted = tensorwasm_bundle::TrustedKeys::new(vec![key().public()]);
    let now = 1_800_000_000;
    for tenant in ["acme", "globex"] {
        let d = admit(&runtime, &trusted, tenant, &arith(1), now, now).unwrap();
        assert_eq!(d.prepared.queue(), Some(tenant));
        // Outside the daemon (`tensorwasm run`), a module launches on the default queue.
        let plain = runtime.prepare(d.prepared.module()).unwrap();
        assert_eq!(plain.queue(), None);
    }
}
