//! The CUDA runner (feature `cuda`). Without libcuda, `CudaBackend::new` must be an error and
//! never a panic; that part runs everywhere. The rest needs a GPU: it is skipped with a message
//! when none is present, unless `TENSORWASM_REQUIRE_GPU=1`, which turns a missing GPU into a
//! failure (set it wherever a GPU is expected). Faults on the device are tested in
//! `cuda_fault.rs`: a fault ends the CUDA context for the whole process.
#![cfg(feature = "cuda")]

mod common;

use common::kernels::VECADD;
use common::*;
use tensorwasm_oracle::record::LaunchRecord;
use tensorwasm_oracle::{
    Backend, CudaBackend, DeviceMemory, Error, Interpreter, Launch, ParamValue,
};

fn gpu() -> Option<CudaBackend> {
    let required = switch("TENSORWASM_REQUIRE_GPU");
    match CudaBackend::new(0) {
        Ok(b) => Some(b),
        Err(e) if required => panic!("TENSORWASM_REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            eprintln!("skipped: no GPU here ({e})");
            None
        }
    }
}

#[test]
fn a_host_without_libcuda_gets_an_error_not_a_panic() {
    if CudaBackend::library_present() {
        // A device ordinal no host has is the same kind of error.
        let e = CudaBackend::new(4096).unwrap_err();
        assert!(matches!(e, Error::Device(_)), "{e}");
        assert!(e.to_string().contains("device 4096"), "{e}");
    } else {
        let e = CudaBackend::new(0).unwrap_err();
        assert!(
            e.to_string().starts_with("CUDA: libcuda is not installed"),
            "{e}"
        );
    }
}

#[test]
fn device_reports_itself() {
    let Some(b) = gpu() else { return };
    let info = b.info().unwrap();
    assert!(!info.name.is_empty());
    assert!(info.compute_capability.0 >= 5, "{info:?}");
    assert!(
        info.multiprocessors > 0 && info.memory_bytes > 0,
        "{info:?}"
    );
    assert_eq!(b.name(), "cuda");
}

fn vadd_launch(
    mem: &mut DeviceMemory,
    n: u32,
    out_offset: i64,
) -> (Launch, [tensorwasm_oracle::BufferId; 3]) {
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 0.5)).collect();
    let ids = [
        mem.alloc(f32s(&a)),
        mem.alloc(f32s(&b)),
        mem.alloc(vec![0xee; n as usize * 4 + 16]),
    ];
    let launch = Launch {
        grid: [n.div_ceil(128), 1, 1],
        block: [128, 1, 1],
        params: vec![
            ParamValue::Ptr(ids[0]),
            ParamValue::Ptr(ids[1]),
            ParamValue::PtrOffset(ids[2], out_offset),
            ParamValue::U32(n),
        ],
    };
    (launch, ids)
}

#[test]
fn gpu_and_interpreter_agree_byte_for_byte_with_offset_pointers() {
    let Some(mut gpu) = gpu() else { return };
    let n = 1000;
    let mut m1 = DeviceMemory::new();
    let (launch, ids) = vadd_launch(&mut m1, n, 8);
    let mut m2 = m1.clone();
    let stats = gpu.launch(VECADD, "vecadd", &launch, &mut m1).unwrap();
    Interpreter::new()
        .launch(VECADD, "vecadd", &launch, &mut m2)
        .unwrap();
    assert_eq!(stats.threads, 1024);
    assert!(stats.gpu_ns > 0, "{stats:?}");
    let out = m1.read(ids[2]).unwrap();
    assert_eq!(out, m2.read(ids[2]).unwrap());
    // The offset moved the output 8 bytes in: the first 8 and last 8 bytes are untouched.
    assert_eq!(&out[..8], &[0xee; 8]);
    assert_eq!(&out[out.len() - 8..], &[0xee; 8]);
    let a = to_f32s(m1.read(ids[0]).unwrap());
    let b = to_f32s(m1.read(ids[1]).unwrap());
    let got = to_f32s(&out[8..8 + n as usize * 4]);
    for i in 0..n as usize {
        assert_eq!(got[i].to_bits(), (a[i] + b[i]).to_bits(), "element {i}");
    }
}

#[test]
fn queues_run_concurrently_from_many_threads_and_match_the_interpreter() {
    let Some(gpu) = gpu() else { return };
    // The same name is the same stream; past MAX_QUEUES names, the default stream.
    let q = gpu.queue("tenant-0").unwrap();
    let again = gpu.queue("tenant-0").unwrap();
    assert!(q == again);
    assert!(q != gpu.queue("tenant-1").unwrap());
    for i in 1..tensorwasm_oracle::MAX_QUEUES + 3 {
        gpu.queue(&format!("tenant-{i}")).unwrap();
    }
    let past = gpu.queue("one-too-many").unwrap();
    assert!(past == gpu.default_queue());
    // Eight threads, four queues, one shared backend: every launch matches the interpreter.
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let gpu = &gpu;
            s.spawn(move || {
                let queue = gpu.queue(&format!("tenant-{}", t % 4)).unwrap();
                for round in 0..20u32 {
                    let n = 1 + 997 * t + round;
                    let mut m1 = DeviceMemory::new();
                    let (launch, ids) = vadd_launch(&mut m1, n, 4);
                    let mut m2 = m1.clone();
                    gpu.launch_on(&queue, VECADD, "vecadd", &launch, &mut m1)
                        .unwrap();
                    Interpreter::new()
                        .launch(VECADD, "vecadd", &launch, &mut m2)
                        .unwrap();
                    assert_eq!(
                        m1.read(ids[2]).unwrap(),
                        m2.read(ids[2]).unwrap(),
                        "n = {n}"
                    );
                }
            });
        }
    });
}

#[test]
fn a_launch_record_replays_on_the_gpu() {
    let Some(mut gpu) = gpu() else { return };
    let mut mem = DeviceMemory::new();
    let (launch, _) = vadd_launch(&mut mem, 300, 0);
    let mut after = mem.clone();
    Interpreter::new()
        .launch(VECADD, "vecadd", &launch, &mut after)
        .unwrap();
    let expect = (0..after.len())
        .map(|i| Some(after.read(after.id(i).unwrap()).unwrap().to_vec()))
        .collect();
    let rec = LaunchRecord::new(
        "vadd",
        "interpreter",
        VECADD,
        "vecadd",
        &launch,
        &mem,
        expect,
    )
    .unwrap();
    let rec = LaunchRecord::from_json(&rec.to_json()).unwrap();
    let r = rec.replay(&mut gpu).unwrap();
    assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
    // A record whose expectation is wrong is caught.
    let mut bad = rec.clone();
    let mut want = hex::decode(bad.expect[2].as_ref().unwrap()).unwrap();
    want[40] ^= 1;
    bad.expect[2] = Some(hex::encode(want));
    let r = bad.replay(&mut gpu).unwrap();
    assert_eq!((r.mismatches.len(), r.mismatches[0].offset), (1, 40));
}

#[test]
fn bad_ptx_and_entries_are_errors() {
    let Some(mut gpu) = gpu() else { return };
    let mut mem = DeviceMemory::new();
    let (launch, _) = vadd_launch(&mut mem, 10, 0);
    let e = gpu
        .launch(VECADD, "no_such_kernel", &launch, &mut mem)
        .unwrap_err();
    assert_eq!(e, Error::UnknownEntry("no_such_kernel".into()));
    let e = gpu
        .launch(&format!("{VECADD}\0"), "vecadd", &launch, &mut mem)
        .unwrap_err();
    assert!(matches!(e, Error::Parse { .. } | Error::Launch(_)), "{e}");
    // Parses, but no driver accepts this target.
    let bad = VECADD.replace(".target sm_80", ".target sm_9999");
    let e = gpu.launch(&bad, "vecadd", &launch, &mut mem).unwrap_err();
    assert!(matches!(e, Error::Device(_)), "{e}");
    assert!(e.to_string().contains("rejected the PTX"), "{e}");
    // Too few parameters never reaches the driver.
    let mut short = launch.clone();
    short.params.pop();
    let e = gpu.launch(VECADD, "vecadd", &short, &mut mem).unwrap_err();
    assert!(e.to_string().contains("takes 4 parameters"), "{e}");
    // The backend still works afterwards.
    gpu.launch(VECADD, "vecadd", &launch, &mut mem).unwrap();
}
