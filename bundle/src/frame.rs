//! One zstd frame per section: deterministic compression, and bounded decompression.
//!
//! [`inflate`] writes into a buffer of exactly the signed raw length and fails the moment the
//! frame would produce one byte more, so a frame can never make the reader allocate past what the
//! signed manifest allows. This module must never be handed stored bytes whose BLAKE3 hash has not
//! been checked against the signed manifest; the reader is the only caller and checks first.

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer};

use crate::error::{Error, Result};

/// Smallest window log zstd has (1 KiB).
const MIN_WINDOW_LOG: u32 = 10;
/// Largest window log we ever allow (sections are capped at 1 GiB anyway).
const MAX_WINDOW_LOG: u32 = 30;
/// Magic number of a zstd frame (0xFD2FB528, little endian); skippable and legacy frames differ.
const ZSTD_FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

fn zstd_msg(code: usize) -> String {
    zstd_safe::get_error_name(code).to_owned()
}

/// Compresses `raw` into one frame with content size and checksum, at `level`.
pub(crate) fn compress(index: u32, raw: &[u8], level: i32) -> Result<Vec<u8>> {
    let err = |msg: String| Error::Compress { index, msg };
    let mut cctx = CCtx::try_create().ok_or_else(|| err("cannot create context".to_owned()))?;
    for p in [
        CParameter::CompressionLevel(level),
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(true),
        CParameter::DictIdFlag(false),
        CParameter::NbWorkers(0),
    ] {
        cctx.set_parameter(p).map_err(|c| err(zstd_msg(c)))?;
    }
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(raw.len()));
    cctx.compress2(&mut out, raw)
        .map_err(|c| err(zstd_msg(c)))?;
    Ok(out)
}

/// The window log a frame of `raw_len` bytes may use: the length rounded up to a power of two,
/// at least 1 KiB.
pub(crate) fn window_log_for(raw_len: u64) -> u32 {
    let log = raw_len
        .max(1)
        .checked_next_power_of_two()
        .map_or(64, u64::trailing_zeros);
    log.clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG)
}

/// Decompresses exactly one frame that must yield exactly `raw_len` bytes.
///
/// Rejects, in order: anything but a zstd frame (skippable frames included); a frame header that declares a content size other than `raw_len`; a
/// frame that does not span all of `stored`; a window larger than [`window_log_for`] allows;
/// output past `raw_len` ([`Error::SectionInflates`]); a frame cut short; output short of
/// `raw_len` ([`Error::SectionShort`]).
pub(crate) fn inflate(index: u32, stored: &[u8], raw_len: u64) -> Result<Vec<u8>> {
    let err = |msg: String| Error::Decompress { index, msg };
    if !stored.starts_with(&ZSTD_FRAME_MAGIC) {
        return Err(err(
            "stored bytes do not start with a zstd frame magic".to_owned()
        ));
    }
    match zstd_safe::get_frame_content_size(stored) {
        Err(_) => return Err(err("bad or truncated frame header".to_owned())),
        Ok(Some(n)) if n > raw_len => return Err(Error::SectionInflates { index, raw_len }),
        Ok(Some(n)) if n < raw_len => {
            return Err(Error::SectionShort {
                index,
                expected: raw_len,
                got: n,
            });
        }
        Ok(_) => {}
    }
    let frame_len = zstd_safe::find_frame_compressed_size(stored).map_err(|c| err(zstd_msg(c)))?;
    if frame_len != stored.len() {
        return Err(err(format!(
            "the frame ends at byte {frame_len} of {} stored bytes",
            stored.len()
        )));
    }
    let cap = usize::try_from(raw_len).map_err(|_| Error::SectionInflates { index, raw_len })?;
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(cap)
        .map_err(|_| err(format!("cannot reserve {cap} bytes for the output")))?;
    let mut dctx = DCtx::try_create().ok_or_else(|| err("cannot create context".to_owned()))?;
    dctx.set_parameter(DParameter::WindowLogMax(window_log_for(raw_len)))
        .map_err(|c| err(zstd_msg(c)))?;
    let mut input = InBuffer::around(stored);
    loop {
        let (in_before, out_before) = (input.pos(), out.len());
        let done = if out.len() < cap {
            let pos = out.len();
            let mut ob = OutBuffer::around_pos(&mut out, pos);
            dctx.decompress_stream(&mut ob, &mut input)
                .map_err(|c| err(zstd_msg(c)))?
                == 0
        } else {
            // Output is full: one more byte of room tells "finished" from "inflates past".
            let mut probe = [0u8; 1];
            let mut ob = OutBuffer::around(&mut probe[..]);
            let hint = dctx
                .decompress_stream(&mut ob, &mut input)
                .map_err(|c| err(zstd_msg(c)))?;
            if ob.pos() > 0 {
                return Err(Error::SectionInflates { index, raw_len });
            }
            hint == 0
        };
        if done {
            break;
        }
        if input.pos() == in_before && out.len() == out_before {
            return Err(err(format!(
                "frame is cut short after {} bytes of output",
                out.len()
            )));
        }
    }
    if input.pos() != stored.len() {
        return Err(err(format!(
            "{} bytes after the end of the frame",
            stored.len() - input.pos()
        )));
    }
    if out.len() != cap {
        return Err(Error::SectionShort {
            index,
            expected: raw_len,
            got: out.len() as u64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_log_bounds() {
        assert_eq!(window_log_for(0), 10);
        assert_eq!(window_log_for(1024), 10);
        assert_eq!(window_log_for(1025), 11);
        assert_eq!(window_log_for(1 << 30), 30);
        assert_eq!(window_log_for(u64::MAX), 30);
    }

    #[test]
    fn writer_frames_fit_the_window_the_reader_allows() {
        for len in [0usize, 1, 1023, 1024, 1025, 4097, 70_000, (1 << 20) + 1] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
            let stored = compress(0, &raw, crate::ZSTD_LEVEL).unwrap();
            assert_eq!(inflate(0, &stored, len as u64).unwrap(), raw, "len {len}");
        }
    }
}
