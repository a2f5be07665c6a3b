//! Launch records: a round trip on the interpreter, and every malformed record an error naming
//! the field, never a panic.

mod common;

use common::kernels::VECADD;
use common::*;
use tensorwasm_oracle::record::{LaunchRecord, RECORD_VERSION};
use tensorwasm_oracle::{Backend, DeviceMemory, Interpreter, Launch, ParamValue};

fn vadd_record() -> LaunchRecord {
    let mut mem = DeviceMemory::new();
    let a = mem.alloc(f32s(&[1.0, 2.0, 3.0]));
    let b = mem.alloc(f32s(&[0.5, 0.25, 0.125]));
    let c = mem.alloc(vec![0; 12]);
    let launch = Launch {
        grid: [1, 1, 1],
        block: [4, 1, 1],
        params: vec![
            ParamValue::Ptr(a),
            ParamValue::Ptr(b),
            ParamValue::PtrOffset(c, 0),
            ParamValue::U32(3),
        ],
    };
    let mut after = mem.clone();
    Interpreter::new()
        .launch(VECADD, "vecadd", &launch, &mut after)
        .unwrap();
    let expect = vec![None, None, Some(after.read(c).unwrap().to_vec())];
    LaunchRecord::new(
        "vadd",
        "interpreter",
        VECADD,
        "vecadd",
        &launch,
        &mem,
        expect,
    )
    .unwrap()
}

#[test]
fn a_record_round_trips_through_json_and_replays() {
    let rec = LaunchRecord::from_json(&vadd_record().to_json()).unwrap();
    assert_eq!(rec.version, RECORD_VERSION);
    let r = rec.replay(&mut Interpreter::new()).unwrap();
    assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
    assert_eq!(r.stats.threads, 4);
    assert_eq!(
        hex::decode(rec.expect[2].as_ref().unwrap()).unwrap(),
        f32s(&[1.5, 2.25, 3.125])
    );
}

#[test]
fn malformed_records_are_errors_naming_the_field() {
    let err = |r: &LaunchRecord| r.replay(&mut Interpreter::new()).unwrap_err().to_string();
    assert!(
        LaunchRecord::from_json("{not json")
            .unwrap_err()
            .to_string()
            .contains("not a launch record"),
    );
    let mut r = vadd_record();
    r.version = 99;
    let e = LaunchRecord::from_json(&r.to_json())
        .unwrap_err()
        .to_string();
    assert!(e.contains("record version 99"), "{e}");

    let mut r = vadd_record();
    r.buffers[1] = "zz".into();
    assert!(err(&r).contains("buffers[1] is not hex"), "{}", err(&r));

    let mut r = vadd_record();
    r.expect[2] = Some("0g".into());
    assert!(err(&r).contains("expect[2] is not hex"), "{}", err(&r));

    let mut r = vadd_record();
    r.params[0] = tensorwasm_oracle::record::RecordParam::Buffer {
        buffer: 7,
        offset: 0,
    };
    assert!(err(&r).contains("params[0] names buffer 7"), "{}", err(&r));

    // A wrong-length expectation is a mismatch at the end of the shorter buffer.
    let mut r = vadd_record();
    r.expect[2] = Some(hex::encode([0u8; 4]));
    let m = r.replay(&mut Interpreter::new()).unwrap().mismatches;
    assert_eq!((m.len(), m[0].buffer, m[0].offset), (1, 2, 4));

    // An expectation list that does not match the buffers is refused when recording.
    let mem = DeviceMemory::new();
    let launch = Launch {
        grid: [1, 1, 1],
        block: [1, 1, 1],
        params: vec![],
    };
    let e = LaunchRecord::new("x", "y", VECADD, "vecadd", &launch, &mem, vec![None])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 expected buffers for 0 buffers"), "{e}");
}
