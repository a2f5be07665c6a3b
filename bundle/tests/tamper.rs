//! Every single-byte change to a bundle is caught, and caught before decompression.

mod common;

use common::*;
use tensorwasm_bundle::*;

/// Opens and reads every section; the first error wins.
fn open_and_read_all(bytes: &[u8], trusted: &TrustedKeys) -> Result<()> {
    let b = VerifiedBundle::open(bytes, trusted, NOW)?;
    for i in 0..b.manifest().sections.len() as u32 {
        b.section(i)?;
    }
    Ok(())
}

#[test]
fn every_byte_flip_is_rejected_before_decompression() {
    let (a, b) = (key(1), key(2));
    let bytes = sample_bundle(&[&a, &b]);
    for trusted in [trust(&[&a]), trust(&[&a, &b])] {
        open_and_read_all(&bytes, &trusted).unwrap();
        for pos in 0..bytes.len() {
            for mask in [0xff, 0x01] {
                let mut t = bytes.clone();
                t[pos] ^= mask;
                match open_and_read_all(&t, &trusted) {
                    Ok(()) => panic!("flip {mask:#04x} at {pos} accepted"),
                    Err(e) => assert!(
                        e.is_before_decompression(),
                        "flip {mask:#04x} at {pos}: {e}"
                    ),
                }
                // inspect never decompresses; it may accept only section-byte flips.
                if let Err(e) = inspect_untrusted(&t) {
                    assert!(e.is_before_decompression());
                }
            }
        }
    }
}

#[test]
fn flips_in_the_signed_part_fail_inspect_too() {
    let k = key(1);
    let bytes = sample_bundle(&[&k]);
    let sections_start = inspect_untrusted(&bytes).unwrap().2.section_offsets[0] as usize;
    for pos in 0..sections_start {
        let mut t = bytes.clone();
        t[pos] ^= 0x01;
        assert!(
            inspect_untrusted(&t).is_err(),
            "flip at {pos} accepted by inspect"
        );
    }
}
