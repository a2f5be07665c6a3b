//! Device memory as the interpreter (and, later, a CUDA runner) sees it: a set of buffers, each
//! with a distinct 256-byte-aligned device address starting above 4 GiB, separated by unmapped
//! guard gaps so that an access one past the end of a buffer faults instead of landing in the
//! next one.
//!
//! This module must never hand out overlapping address ranges, never resize a buffer behind the
//! caller's back, and never panic on a foreign [`BufferId`].

use crate::error::{Error, Result};

/// First device address handed out: above 4 GiB, so that kernels that truncate pointers to 32
/// bits fault instead of silently working.
pub const BASE_ADDRESS: u64 = 0x1_0000_0000;
/// Every buffer address is a multiple of this.
pub const ALIGNMENT: u64 = 256;
/// Unmapped bytes between consecutive buffers.
pub const GUARD_GAP: u64 = 256;

/// Names one buffer of one [`DeviceMemory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(u32);

impl BufferId {
    /// The index of this buffer in allocation order.
    pub fn index(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone)]
struct Buffer {
    addr: u64,
    bytes: Vec<u8>,
}

/// The device buffers of one launch (or a sequence of launches).
#[derive(Debug, Clone)]
pub struct DeviceMemory {
    buffers: Vec<Buffer>,
    next_addr: u64,
}

impl Default for DeviceMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceMemory {
    /// Empty memory.
    pub fn new() -> Self {
        DeviceMemory {
            buffers: Vec::new(),
            next_addr: BASE_ADDRESS,
        }
    }

    /// Adds a buffer holding `bytes` and returns its id.
    pub fn alloc(&mut self, bytes: Vec<u8>) -> BufferId {
        let addr = self.next_addr;
        let len = bytes.len() as u64;
        let end = addr.saturating_add(len).saturating_add(GUARD_GAP);
        self.next_addr = end.div_ceil(ALIGNMENT).saturating_mul(ALIGNMENT);
        let id = BufferId(self.buffers.len() as u32);
        self.buffers.push(Buffer { addr, bytes });
        id
    }

    /// Adds a zero-filled buffer of `len` bytes.
    pub fn alloc_zeroed(&mut self, len: usize) -> BufferId {
        self.alloc(vec![0; len])
    }

    /// The bytes of a buffer.
    pub fn read(&self, id: BufferId) -> Result<&[u8]> {
        self.buffers
            .get(id.0 as usize)
            .map(|b| b.bytes.as_slice())
            .ok_or(Error::UnknownBuffer(id.0))
    }

    /// Replaces the contents of a buffer with `bytes` of the same length.
    pub fn write(&mut self, id: BufferId, bytes: &[u8]) -> Result<()> {
        let len = self.read(id)?.len();
        if len != bytes.len() {
            return Err(Error::Launch(format!(
                "write of {} bytes to buffer {} of {len} bytes",
                bytes.len(),
                id.0,
            )));
        }
        self.write_at(id, 0, bytes)
    }

    /// Writes `bytes` into a buffer at byte `offset`; fails, writing nothing, unless the whole
    /// range lies inside the buffer.
    pub fn write_at(&mut self, id: BufferId, offset: usize, bytes: &[u8]) -> Result<()> {
        let buf = self
            .buffers
            .get_mut(id.0 as usize)
            .ok_or(Error::UnknownBuffer(id.0))?;
        let size = buf.bytes.len();
        let dst = offset
            .checked_add(bytes.len())
            .and_then(|end| buf.bytes.get_mut(offset..end))
            .ok_or_else(|| {
                Error::Launch(format!(
                    "write of {} bytes at offset {offset} to buffer {} of {size} bytes",
                    bytes.len(),
                    id.0,
                ))
            })?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    /// Drops the bytes of a buffer. Its address is never handed out again, and every later
    /// access to it faults (it now has zero bytes).
    pub fn release(&mut self, id: BufferId) -> Result<()> {
        let buf = self
            .buffers
            .get_mut(id.0 as usize)
            .ok_or(Error::UnknownBuffer(id.0))?;
        buf.bytes = Vec::new();
        Ok(())
    }

    /// The device address of a buffer.
    pub fn address(&self, id: BufferId) -> Result<u64> {
        self.buffers
            .get(id.0 as usize)
            .map(|b| b.addr)
            .ok_or(Error::UnknownBuffer(id.0))
    }

    /// The id of the `index`-th buffer allocated, if there is one.
    pub fn id(&self, index: usize) -> Option<BufferId> {
        (index < self.buffers.len()).then_some(BufferId(index as u32))
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// Whether no buffer was allocated.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// The bytes `[addr, addr+size)` if they lie inside one buffer.
    pub(crate) fn slice(&self, addr: u64, size: u32) -> Option<&[u8]> {
        let (i, off) = self.locate(addr, size)?;
        self.buffers[i].bytes.get(off..off + size as usize)
    }

    /// Mutable bytes `[addr, addr+size)` if they lie inside one buffer.
    pub(crate) fn slice_mut(&mut self, addr: u64, size: u32) -> Option<&mut [u8]> {
        let (i, off) = self.locate(addr, size)?;
        self.buffers[i].bytes.get_mut(off..off + size as usize)
    }

    fn locate(&self, addr: u64, size: u32) -> Option<(usize, usize)> {
        // Buffers are in increasing address order: binary search for the last base <= addr.
        let i = self
            .buffers
            .partition_point(|b| b.addr <= addr)
            .checked_sub(1)?;
        let b = &self.buffers[i];
        let off = addr - b.addr;
        let end = off.checked_add(u64::from(size))?;
        if end <= b.bytes.len() as u64 {
            Some((i, off as usize))
        } else {
            None
        }
    }
}
