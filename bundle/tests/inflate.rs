//! Sections inflate to exactly their signed raw length, never more, never less.

mod common;

use common::*;
use tensorwasm_bundle::*;

/// A bundle whose only section is `stored`, claiming `raw_len`; opened and read.
fn read_crafted(stored: &[u8], raw_len: u64) -> Result<Vec<u8>> {
    let k = key(1);
    let m = manifest_with_sections(vec![entry(SectionKind::Code, stored, raw_len)]);
    let bytes = craft(&m, &[seed(1)], &[stored]);
    let b = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW)?;
    assert_eq!(b.section_stored(0)?, stored);
    b.section(0)
}

fn real_frame(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, 3).unwrap()
}

const TEXT: &[u8] = b"hello world, hello world, hello world";

#[test]
fn crafted_bundle_reads_back() {
    assert_eq!(
        read_crafted(&real_frame(TEXT), TEXT.len() as u64).unwrap(),
        TEXT
    );
}

#[test]
fn frame_larger_than_raw_len() {
    let e = read_crafted(&real_frame(TEXT), 10).unwrap_err();
    assert_eq!(
        e,
        Error::SectionInflates {
            index: 0,
            raw_len: 10
        }
    );
    assert!(!e.is_before_decompression());
}

#[test]
fn frame_shorter_than_raw_len() {
    let e = read_crafted(&real_frame(TEXT), 100).unwrap_err();
    assert_eq!(
        e,
        Error::SectionShort {
            index: 0,
            expected: 100,
            got: TEXT.len() as u64
        }
    );
    assert!(!e.is_before_decompression());
}

#[test]
fn frame_without_content_size_shorter_than_raw_len() {
    let mut f = frame_header_no_size(10);
    f.extend(rle_block(b'a', 10, true));
    assert_eq!(read_crafted(&f, 10).unwrap(), vec![b'a'; 10]);
    let e = read_crafted(&f, 16).unwrap_err();
    assert_eq!(
        e,
        Error::SectionShort {
            index: 0,
            expected: 16,
            got: 10
        }
    );
}

#[test]
fn frame_claiming_a_huge_content_size_is_refused_without_allocating_it() {
    // Declares 1 TiB; a reader that trusted the frame header would try to allocate it.
    let mut f = frame_header_with_size(1 << 40);
    f.extend(rle_block(b'a', 100, true));
    assert_eq!(
        read_crafted(&f, 16).unwrap_err(),
        Error::SectionInflates {
            index: 0,
            raw_len: 16
        }
    );
    let mut f = frame_header_with_size(1 << 63);
    f.extend(rle_block(b'a', 100, true));
    assert_eq!(
        read_crafted(&f, 16).unwrap_err(),
        Error::SectionInflates {
            index: 0,
            raw_len: 16
        }
    );
}

#[test]
fn frame_inflating_to_a_gigabyte_stops_at_raw_len() {
    // No content size, 4 KiB window, 262144 RLE blocks of 4 KiB: 1 GiB from ~1 MiB stored.
    // Decoding it all would take a gigabyte; the reader stops one byte past raw_len.
    let mut f = frame_header_no_size(12);
    let blocks = 1 << 18;
    for i in 0..blocks {
        f.extend(rle_block(b'z', 4096, i == blocks - 1));
    }
    let start = std::time::Instant::now();
    assert_eq!(
        read_crafted(&f, 4096).unwrap_err(),
        Error::SectionInflates {
            index: 0,
            raw_len: 4096
        }
    );
    assert_eq!(
        read_crafted(&f, 5000).unwrap_err(),
        Error::SectionInflates {
            index: 0,
            raw_len: 5000
        }
    );
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
}

#[test]
fn frame_wanting_a_window_larger_than_raw_len_is_refused() {
    // A 1 GiB window for a 4 KiB section.
    let mut f = frame_header_no_size(30);
    f.extend(rle_block(b'a', 4096, true));
    let e = read_crafted(&f, 4096).unwrap_err();
    assert!(matches!(e, Error::Decompress { index: 0, .. }), "{e}");
}

#[test]
fn truncated_frame_and_extra_bytes() {
    let f = real_frame(TEXT);
    let e = read_crafted(&f[..f.len() - 2], TEXT.len() as u64).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
    let mut two = f.clone();
    two.extend_from_slice(&f);
    let e = read_crafted(&two, TEXT.len() as u64).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
    let mut junk = f.clone();
    junk.push(0);
    let e = read_crafted(&junk, TEXT.len() as u64).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
    let e = read_crafted(b"not zstd at all", 5).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
    let e = read_crafted(b"", 0).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
}

#[test]
fn wrong_hash_is_caught_before_decompression() {
    let k = key(1);
    let stored = real_frame(TEXT);
    let mut e = entry(SectionKind::Ptx, &stored, TEXT.len() as u64);
    e.hash[0] ^= 1;
    let bytes = craft(&manifest_with_sections(vec![e]), &[seed(1)], &[&stored]);
    let b = VerifiedBundle::open(&bytes, &trust(&[&k]), NOW).unwrap();
    let err = b.section(0).unwrap_err();
    assert_eq!(
        err,
        Error::SectionHash {
            index: 0,
            kind: SectionKind::Ptx
        }
    );
    assert!(err.is_before_decompression());
    assert_eq!(b.section_stored(0).unwrap_err(), err);
}

#[test]
fn skippable_frame_is_not_a_section() {
    // Skippable frame: magic 0x184D2A50, 4-byte length, payload.
    let mut f = vec![0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3];
    let e = read_crafted(&f, 0).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
    f.extend(real_frame(TEXT));
    let e = read_crafted(&f, TEXT.len() as u64).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
}
