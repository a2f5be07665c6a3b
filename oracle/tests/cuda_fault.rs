//! A kernel that faults on the GPU is an error, never a panic, and so is every later launch on
//! the same backend (the driver ends the context). In a file of its own: the fault ends the CUDA
//! context of the whole test process. Skipped without a GPU unless `TENSORWASM_REQUIRE_GPU=1`.
#![cfg(feature = "cuda")]

use tensorwasm_oracle::{Backend, CudaBackend, DeviceMemory, Error, Launch, ParamValue};

const WILD_STORE: &str = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry wild(.param .u64 p)\n{\n    .reg .b64 %rd<3>;\n    ld.param.u64 %rd1, [p];\n    add.s64 %rd2, %rd1, 1099511627776;\n    st.global.u32 [%rd2], 7;\n    ret;\n}\n";

#[test]
fn a_faulting_kernel_is_an_error_and_so_is_the_next_launch() {
    // On when set to anything but empty or `0` (docs/TESTING.md, "Environment switches").
    let required =
        std::env::var_os("TENSORWASM_REQUIRE_GPU").is_some_and(|v| !v.is_empty() && v != "0");
    let mut gpu = match CudaBackend::new(0) {
        Ok(b) => b,
        Err(e) if required => panic!("TENSORWASM_REQUIRE_GPU=1 but {e}"),
        Err(e) => return eprintln!("skipped: no GPU here ({e})"),
    };
    let mut mem = DeviceMemory::new();
    let id = mem.alloc(vec![0; 16]);
    let launch = Launch {
        grid: [1, 1, 1],
        block: [1, 1, 1],
        params: vec![ParamValue::Ptr(id)],
    };
    let e = gpu
        .launch(WILD_STORE, "wild", &launch, &mut mem)
        .unwrap_err();
    assert!(matches!(e, Error::Device(_)), "{e}");
    assert!(e.to_string().contains("failed on the device"), "{e}");
    assert_eq!(mem.read(id).unwrap(), &[0; 16], "no partial copy-back");
    let e = gpu
        .launch(WILD_STORE, "wild", &launch, &mut mem)
        .unwrap_err();
    assert!(matches!(e, Error::Device(_)), "{e}");
}
