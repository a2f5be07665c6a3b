//! `wasi:cuda`: explicit GPU access for guests that bring their own PTX.
//!
//! A guest imports these functions from the core-module import module [`IMPORT_MODULE`]
//! (`wit/wasi-cuda.wit` states the contract; `samples/c/cuda/wasi_cuda.h` is the C header). It
//! loads PTX text, allocates device buffers, copies bytes between its linear memory and those
//! buffers, and launches entries with a typed argument buffer. Every call returns a
//! non-negative value on success and one of the stable negative [`code`]s on failure, after
//! which `last_error` gives the message.
//!
//! Every guest pointer and length is bounds-checked against linear memory (in 64-bit
//! arithmetic, so lengths that would wrap are refused) before any device work, and nothing is
//! written to linear memory by a failing call. Device state (modules, buffers) belongs to one
//! invocation: a fresh instance starts with none, and everything is released when it ends.
//!
//! Backends are the dispatch host's: `none` answers [`code::NOT_AVAILABLE`] (the guest runs
//! its CPU path), `emulated` runs the PTX on the oracle's interpreter, `cuda` on an NVIDIA GPU.
//! Launches are synchronous: when `launch` returns, the kernel has finished, so `synchronize`
//! only reports that there is nothing pending.

use std::time::Instant;

use tensorwasm_oracle::{
    BufferId, DEFAULT_STEP_LIMIT, DeviceMemory, Interpreter, Launch, ParamValue, PtxModule,
};
use wasmtime::{Caller, Extern, Linker};

use crate::error::{Error, Result};
use crate::offload::{BackendKind, HasOffload, Host, KernelStats};

/// The core-module import module of the functions.
pub const IMPORT_MODULE: &str = "wasi:cuda";

/// The stable error codes every function returns on failure.
pub mod code {
    /// No device: the host runs with backend `none`, or the guest has no device.
    pub const NOT_AVAILABLE: i32 = -1;
    /// A guest pointer and length that leave linear memory (or wrap past 2^32), or a device
    /// offset and length that leave the buffer.
    pub const BAD_POINTER: i32 = -2;
    /// PTX text that is not UTF-8 or does not parse.
    pub const MALFORMED_PTX: i32 = -3;
    /// The launch failed: no such entry, arguments that do not match its parameters, bad
    /// dimensions, a fault or a driver error while it ran. Buffer contents are then unspecified.
    pub const LAUNCH_FAILED: i32 = -4;
    /// A per-invocation limit ([`super::limits`]) would be exceeded.
    pub const QUOTA: i32 = -5;
    /// A module or buffer handle that was never returned or was freed.
    pub const BAD_HANDLE: i32 = -6;
    /// A malformed argument record or entry name.
    pub const BAD_ARGUMENT: i32 = -7;
}

/// Per-invocation limits.
pub mod limits {
    /// Modules loaded.
    pub const MAX_MODULES: usize = 16;
    /// Bytes of one module's PTX text.
    pub const MAX_PTX_BYTES: u64 = 4 << 20;
    /// Buffers allocated (freed ones included).
    pub const MAX_BUFFERS: usize = 1024;
    /// Bytes of device memory allocated and not freed.
    pub const MAX_DEVICE_BYTES: u64 = 256 << 20;
    /// Arguments of one launch.
    pub const MAX_ARGS: u32 = 64;
    /// Bytes of an entry name.
    pub const MAX_ENTRY_NAME: usize = 256;
    /// Threads of one launch on the `emulated` backend.
    pub const EMULATED_MAX_THREADS: u64 = 1 << 20;
    /// Instructions one launch may run on the `emulated` backend, all threads together (each
    /// thread gets its share as its step limit), so that a launch returns in seconds.
    pub const EMULATED_MAX_INSTRUCTIONS: u64 = 1 << 26;
}

/// Size in bytes of one argument record: `{u32 kind, u32 reserved (0), u64 value}`.
pub const ARG_RECORD_BYTES: u64 = 16;

/// Argument kinds of a record.
pub mod arg_kind {
    /// A 32-bit integer (`.u32`, `.s32`, `.b32` parameters); the value's high 32 bits are 0.
    pub const U32: u32 = 1;
    /// A 64-bit integer.
    pub const U64: u32 = 2;
    /// An `f32`, its bits in the low 32 bits of the value.
    pub const F32: u32 = 3;
    /// An `f64`, its bits as the value.
    pub const F64: u32 = 4;
    /// A buffer handle; the kernel receives the buffer's device address (a 64-bit parameter).
    pub const BUFFER: u32 = 5;
}

/// One invocation's device state.
#[derive(Debug, Default)]
pub struct GuestDevice {
    modules: Vec<GuestModule>,
    mem: DeviceMemory,
    /// Handle → buffer; `None` once freed.
    buffers: Vec<Option<BufferId>>,
    live_bytes: u64,
    last_error: String,
    stats: Vec<KernelStats>,
}

#[derive(Debug)]
struct GuestModule {
    ptx: String,
    parsed: PtxModule,
}

impl GuestDevice {
    /// What each entry the guest launched did, named `wasi:cuda/ENTRY`, in order of first use.
    pub fn stats(&self) -> &[KernelStats] {
        &self.stats
    }

    fn record(&mut self, entry: &str) -> &mut KernelStats {
        let name = format!("{IMPORT_MODULE}/{entry}");
        match self.stats.iter().position(|s| s.kernel == name) {
            Some(i) => &mut self.stats[i],
            None => {
                self.stats.push(KernelStats {
                    kernel: name,
                    ..KernelStats::default()
                });
                self.stats.last_mut().expect("just pushed")
            }
        }
    }

    fn buffer(&self, handle: i32) -> Outcome<BufferId> {
        usize::try_from(handle)
            .ok()
            .and_then(|h| self.buffers.get(h).copied().flatten())
            .ok_or_else(|| fail(code::BAD_HANDLE, format!("no buffer with handle {handle}")))
    }
}

/// A failure: its code and message.
struct Fail {
    code: i32,
    message: String,
}

type Outcome<T> = std::result::Result<T, Fail>;

fn fail(code: i32, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

/// The byte range `[start, start + len)` of `region` (linear memory, a buffer) of `size` bytes,
/// `start` read as an unsigned 32-bit value and added in 64 bits, so nothing wraps.
fn range(
    size: usize,
    start: i32,
    len: u64,
    what: &str,
    region: &str,
) -> Outcome<std::ops::Range<usize>> {
    let start = u64::from(start as u32);
    let end = start + len;
    if end > size as u64 {
        return Err(fail(
            code::BAD_POINTER,
            format!("{what}: bytes [{start}, {end}) leave {region} of {size} bytes"),
        ));
    }
    Ok(start as usize..end as usize)
}

/// A range of linear memory.
fn guest_range(size: usize, ptr: i32, len: u64, what: &str) -> Outcome<std::ops::Range<usize>> {
    range(size, ptr, len, what, "linear memory")
}

/// A range of a device buffer.
fn device_range(size: usize, offset: i32, len: u64, what: &str) -> Outcome<std::ops::Range<usize>> {
    range(size, offset, len, what, "the buffer")
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Runs `f` over linear memory and the device state, then turns its outcome into the return
/// value, keeping the message of a failure for `last_error`.
fn call<T: HasOffload>(
    caller: &mut Caller<'_, T>,
    host: &Host,
    f: impl FnOnce(&Host, Option<&str>, &mut [u8], &mut GuestDevice) -> Outcome<i32>,
) -> i32 {
    let outcome = if host.kind() == BackendKind::None {
        Err(fail(
            code::NOT_AVAILABLE,
            "no device: the host runs with backend none",
        ))
    } else {
        match caller.get_export("memory").and_then(Extern::into_memory) {
            None => Err(fail(
                code::BAD_POINTER,
                "the module exports no memory named `memory`",
            )),
            Some(m) => {
                let (data, state) = m.data_and_store_mut(&mut *caller);
                let state = state.offload();
                f(host, state.queue.as_deref(), data, &mut state.guest)
            }
        }
    };
    match outcome {
        Ok(v) => v,
        Err(e) => {
            caller.data_mut().offload().guest.last_error = e.message;
            e.code
        }
    }
}

fn module_load(mem: &[u8], dev: &mut GuestDevice, ptr: i32, len: i32) -> Outcome<i32> {
    let len = u64::from(len as u32);
    let range = guest_range(mem.len(), ptr, len, "module_load")?;
    if len > limits::MAX_PTX_BYTES {
        return Err(fail(
            code::QUOTA,
            format!(
                "PTX of {len} bytes exceeds the limit of {} bytes",
                limits::MAX_PTX_BYTES
            ),
        ));
    }
    if dev.modules.len() >= limits::MAX_MODULES {
        return Err(fail(
            code::QUOTA,
            format!("more than {} modules loaded", limits::MAX_MODULES),
        ));
    }
    let text = std::str::from_utf8(&mem[range])
        .map_err(|e| fail(code::MALFORMED_PTX, format!("PTX is not UTF-8: {e}")))?;
    let parsed = tensorwasm_oracle::parse_module(text)
        .map_err(|e| fail(code::MALFORMED_PTX, format!("PTX does not parse: {e}")))?;
    dev.modules.push(GuestModule {
        ptx: text.to_string(),
        parsed,
    });
    Ok((dev.modules.len() - 1) as i32)
}

fn mem_alloc(dev: &mut GuestDevice, size: i32) -> Outcome<i32> {
    let size = u64::from(size as u32);
    if dev.buffers.len() >= limits::MAX_BUFFERS {
        return Err(fail(
            code::QUOTA,
            format!("more than {} buffers allocated", limits::MAX_BUFFERS),
        ));
    }
    if dev.live_bytes + size > limits::MAX_DEVICE_BYTES {
        return Err(fail(
            code::QUOTA,
            format!(
                "allocating {size} bytes would hold {} bytes of device memory, over the limit \
                 of {}",
                dev.live_bytes + size,
                limits::MAX_DEVICE_BYTES
            ),
        ));
    }
    let id = dev.mem.alloc_zeroed(size as usize);
    dev.live_bytes += size;
    dev.buffers.push(Some(id));
    Ok((dev.buffers.len() - 1) as i32)
}

fn mem_free(dev: &mut GuestDevice, handle: i32) -> Outcome<i32> {
    let id = dev.buffer(handle)?;
    let size = dev.mem.read(id).map(<[u8]>::len).unwrap_or(0) as u64;
    dev.mem
        .release(id)
        .map_err(|e| fail(code::BAD_HANDLE, e.to_string()))?;
    dev.live_bytes -= size;
    dev.buffers[handle as usize] = None;
    Ok(0)
}

fn memcpy_htod(
    mem: &[u8],
    dev: &mut GuestDevice,
    handle: i32,
    offset: i32,
    src: i32,
    len: i32,
) -> Outcome<i32> {
    let len = u64::from(len as u32);
    let from = guest_range(mem.len(), src, len, "memcpy_htod source")?;
    let id = dev.buffer(handle)?;
    let size = dev.mem.read(id).map(<[u8]>::len).unwrap_or(0);
    let to = device_range(size, offset, len, "memcpy_htod destination")?;
    dev.mem
        .write_at(id, to.start, &mem[from])
        .map_err(|e| fail(code::BAD_POINTER, e.to_string()))?;
    Ok(0)
}

fn memcpy_dtoh(
    mem: &mut [u8],
    dev: &GuestDevice,
    dst: i32,
    handle: i32,
    offset: i32,
    len: i32,
) -> Outcome<i32> {
    let len = u64::from(len as u32);
    let to = guest_range(mem.len(), dst, len, "memcpy_dtoh destination")?;
    let id = dev.buffer(handle)?;
    let bytes = dev
        .mem
        .read(id)
        .map_err(|e| fail(code::BAD_HANDLE, e.to_string()))?;
    let from = device_range(bytes.len(), offset, len, "memcpy_dtoh source")?;
    mem[to].copy_from_slice(&bytes[from]);
    Ok(0)
}

/// `launch(module, name_ptr, name_len, dims_ptr, args_ptr, nargs)`: `dims_ptr` holds six u32
/// (grid x, y, z, block x, y, z), `args_ptr` holds `nargs` records of [`ARG_RECORD_BYTES`].
#[allow(clippy::too_many_arguments)]
fn launch(
    host: &Host,
    queue: Option<&str>,
    mem: &[u8],
    dev: &mut GuestDevice,
    module: i32,
    name_ptr: i32,
    name_len: i32,
    dims_ptr: i32,
    args_ptr: i32,
    nargs: i32,
) -> Outcome<i32> {
    let name = guest_range(
        mem.len(),
        name_ptr,
        u64::from(name_len as u32),
        "launch name",
    )?;
    let dims = guest_range(mem.len(), dims_ptr, 24, "launch dimensions")?;
    let nargs = nargs as u32;
    if nargs > limits::MAX_ARGS {
        return Err(fail(
            code::QUOTA,
            format!("{nargs} arguments exceed the limit of {}", limits::MAX_ARGS),
        ));
    }
    let args = guest_range(
        mem.len(),
        args_ptr,
        u64::from(nargs) * ARG_RECORD_BYTES,
        "launch arguments",
    )?;
    let m = usize::try_from(module)
        .ok()
        .filter(|&m| m < dev.modules.len())
        .ok_or_else(|| fail(code::BAD_HANDLE, format!("no module with handle {module}")))?;
    if name.len() > limits::MAX_ENTRY_NAME {
        return Err(fail(
            code::BAD_ARGUMENT,
            format!(
                "an entry name of {} bytes (at most {})",
                name.len(),
                limits::MAX_ENTRY_NAME
            ),
        ));
    }
    let entry = std::str::from_utf8(&mem[name])
        .map_err(|_| fail(code::BAD_ARGUMENT, "the entry name is not UTF-8"))?
        .to_string();
    // Statistics are kept per entry the module declares, never per name a guest makes up.
    if dev.modules[m].parsed.entry(&entry).is_none() {
        return Err(fail(
            code::LAUNCH_FAILED,
            format!("module {module} has no entry `{entry}`"),
        ));
    }
    let d = &mem[dims];
    let launch = Launch {
        grid: [read_u32(d, 0), read_u32(d, 4), read_u32(d, 8)],
        block: [read_u32(d, 12), read_u32(d, 16), read_u32(d, 20)],
        params: mem[args]
            .chunks_exact(ARG_RECORD_BYTES as usize)
            .enumerate()
            .map(|(i, r)| arg(dev, i, r))
            .collect::<Outcome<_>>()?,
    };
    let threads = launch
        .grid
        .iter()
        .chain(&launch.block)
        .map(|&x| u64::from(x))
        .product::<u64>();
    if host.kind() == BackendKind::Emulated && threads > limits::EMULATED_MAX_THREADS {
        return Err(fail(
            code::QUOTA,
            format!(
                "{threads} threads exceed the emulated backend's limit of {} per launch",
                limits::EMULATED_MAX_THREADS
            ),
        ));
    }
    let start = Instant::now();
    // A launch may take long: off the async worker, if on one (`worker`).
    let ran = crate::worker::blocking(|| match host.kind() {
        BackendKind::None => Err(fail(code::NOT_AVAILABLE, "no device")),
        BackendKind::Emulated => {
            let steps =
                (limits::EMULATED_MAX_INSTRUCTIONS / threads.max(1)).clamp(1, DEFAULT_STEP_LIMIT);
            Interpreter::new()
                .with_step_limit(steps)
                .launch_module(&dev.modules[m].parsed, &entry, &launch, &mut dev.mem)
                .map_err(|e| fail(code::LAUNCH_FAILED, format!("`{entry}`: {e}")))
        }
        BackendKind::Cuda => match host.cuda() {
            Some(_) => host
                .cuda_launch(queue, &dev.modules[m].ptx, &entry, &launch, &mut dev.mem)
                .map_err(|e| fail(code::LAUNCH_FAILED, format!("`{entry}`: {e}"))),
            None => Err(fail(code::NOT_AVAILABLE, "no CUDA device")),
        },
    });
    let elapsed = start.elapsed().as_nanos() as u64;
    let s = dev.record(&entry);
    match ran {
        Ok(_) => {
            s.dispatched += 1;
            s.device_ns += elapsed;
            Ok(0)
        }
        Err(e) => {
            *s.declined.entry("launch-failed").or_default() += 1;
            s.last_decline = Some(e.message.clone());
            Err(e)
        }
    }
}

/// Argument record `i`.
fn arg(dev: &GuestDevice, i: usize, r: &[u8]) -> Outcome<ParamValue> {
    let kind = read_u32(r, 0);
    let reserved = read_u32(r, 4);
    let value = u64::from_le_bytes(r[8..16].try_into().expect("16-byte record"));
    let bad = |why: &str| fail(code::BAD_ARGUMENT, format!("argument {i}: {why}"));
    if reserved != 0 {
        return Err(bad("the reserved field is not 0"));
    }
    let low32 = || u32::try_from(value).map_err(|_| bad("a 32-bit value with high bits set"));
    Ok(match kind {
        arg_kind::U32 => ParamValue::U32(low32()?),
        arg_kind::U64 => ParamValue::U64(value),
        arg_kind::F32 => ParamValue::F32(f32::from_bits(low32()?)),
        arg_kind::F64 => ParamValue::F64(f64::from_bits(value)),
        arg_kind::BUFFER => {
            let h = i32::try_from(value).map_err(|_| bad("not a buffer handle"))?;
            ParamValue::Ptr(dev.buffer(h)?)
        }
        other => return Err(bad(&format!("unknown kind {other}"))),
    })
}

fn last_error<T: HasOffload>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> i32 {
    let Some(m) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return code::BAD_POINTER;
    };
    let (data, state) = m.data_and_store_mut(&mut *caller);
    let msg = state.offload().guest.last_error.as_bytes();
    let n = msg.len().min(len as u32 as usize);
    match guest_range(data.len(), ptr, n as u64, "last_error") {
        Ok(r) => {
            data[r].copy_from_slice(&msg[..n]);
            i32::try_from(msg.len()).unwrap_or(i32::MAX)
        }
        Err(_) => code::BAD_POINTER,
    }
}

/// Defines every `wasi:cuda` function in `linker`, running on `host`'s backend.
pub fn define<T: HasOffload + 'static>(
    linker: &mut Linker<T>,
    host: std::sync::Arc<Host>,
) -> Result<()> {
    let m = IMPORT_MODULE;
    let err = |e: wasmtime::Error| Error::Runtime(format!("cannot define {m}: {e:#}"));
    let h = host.clone();
    linker
        .func_wrap(m, "device_count", move || -> i32 {
            i32::from(h.kind() != BackendKind::None)
        })
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(
            m,
            "module_load",
            move |mut c: Caller<'_, T>, p: i32, l: i32| {
                call(&mut c, &h, |_, _, mem, dev| module_load(mem, dev, p, l))
            },
        )
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(m, "mem_alloc", move |mut c: Caller<'_, T>, size: i32| {
            call(&mut c, &h, |_, _, _, dev| mem_alloc(dev, size))
        })
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(m, "mem_free", move |mut c: Caller<'_, T>, b: i32| {
            call(&mut c, &h, |_, _, _, dev| mem_free(dev, b))
        })
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(
            m,
            "memcpy_htod",
            move |mut c: Caller<'_, T>, b: i32, off: i32, src: i32, len: i32| {
                call(&mut c, &h, |_, _, mem, dev| {
                    memcpy_htod(mem, dev, b, off, src, len)
                })
            },
        )
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(
            m,
            "memcpy_dtoh",
            move |mut c: Caller<'_, T>, dst: i32, b: i32, off: i32, len: i32| {
                call(&mut c, &h, |_, _, mem, dev| {
                    memcpy_dtoh(mem, dev, dst, b, off, len)
                })
            },
        )
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(
            m,
            "launch",
            move |mut c: Caller<'_, T>,
                  module: i32,
                  name: i32,
                  name_len: i32,
                  dims: i32,
                  args: i32,
                  nargs: i32| {
                call(&mut c, &h, |host, queue, mem, dev| {
                    launch(
                        host, queue, mem, dev, module, name, name_len, dims, args, nargs,
                    )
                })
            },
        )
        .map_err(err)?;
    let h = host.clone();
    linker
        .func_wrap(m, "synchronize", move |mut c: Caller<'_, T>| {
            call(&mut c, &h, |_, _, _, _| Ok(0))
        })
        .map_err(err)?;
    linker
        .func_wrap(m, "last_error", |mut c: Caller<'_, T>, p: i32, l: i32| {
            last_error(&mut c, p, l)
        })
        .map_err(err)?;
    Ok(())
}
