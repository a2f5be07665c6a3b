//! The CUDA runner: the same [`Backend`] as the interpreter, on a real GPU through the CUDA
//! driver API (cudarc, libcuda loaded at run time).
//!
//! A launch copies every buffer of the [`DeviceMemory`] to the GPU, runs the kernel once, and
//! copies every buffer back, so a caller compares the two backends by running the same launch on
//! two copies of one memory. Parameters are encoded by the code the interpreter uses, with the
//! buffers' real device addresses.
//!
//! One backend is shared by every thread of a host (`&self` methods, `Sync`): modules load
//! once per PTX text, and each named queue ([`CudaBackend::launch_on`], one per tenant in the
//! daemon) has a CUDA stream of its own, so one tenant's copies and kernels never wait behind
//! another's. [`Backend::launch`] uses the context's default stream.
//!
//! This module must never panic on any input: libcuda may be absent (checked before the first
//! driver call, since cudarc panics when it cannot load the library), the PTX or entry name may
//! contain NUL bytes (checked before cudarc turns them into C strings), and the driver may reject
//! the module or fault in the kernel; each is an [`Error::Device`]. A kernel that faults leaves
//! the CUDA context unusable, and every later call on this backend fails the same way.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{
    CudaContext, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError, result, sys,
};
use cudarc::nvrtc::Ptx;

use crate::backend::{Backend, Launch, LaunchStats, check_dims, encode_params};
use crate::error::{Error, Result};
use crate::memory::DeviceMemory;
use crate::ptx::{PtxModule, parse_module};

/// A stream of the device, for [`CudaBackend::launch_on`]. Equal queues are the same stream.
#[derive(Debug, Clone)]
pub struct Queue(Arc<CudaStream>);

impl PartialEq for Queue {
    fn eq(&self, other: &Queue) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Named queues past this many share the default stream (a stream holds driver resources, and
/// queue names come from outside: one per tenant).
pub const MAX_QUEUES: usize = 256;

/// Runs PTX kernels on one CUDA device.
#[derive(Debug)]
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Loaded modules by PTX text: the driver JIT-compiles each PTX once per backend.
    modules: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Cubins for this device, by the PTX text they were assembled from: loaded instead of it.
    cubins: Mutex<HashMap<String, Vec<u8>>>,
    /// A stream per named queue, made on first use.
    queues: Mutex<HashMap<String, Arc<CudaStream>>>,
    name: String,
    /// `sm_XY` of the device.
    arch: String,
}

/// What a host knows about its CUDA device, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability, e.g. (9, 0).
    pub compute_capability: (i32, i32),
    /// Multiprocessors.
    pub multiprocessors: i32,
    /// Global memory in bytes.
    pub memory_bytes: usize,
    /// The driver's CUDA version, e.g. 13000 for 13.0.
    pub driver_version: i32,
}

fn device_err(what: &str, e: DriverError) -> Error {
    Error::Device(format!("{what}: {e}"))
}

impl CudaBackend {
    /// Whether libcuda can be loaded on this host. Does not touch any device.
    pub fn library_present() -> bool {
        // SAFETY: only tries to dlopen the library under its usual names.
        unsafe { sys::is_culib_present() }
    }

    /// Opens device `ordinal` (its primary context). Fails with [`Error::Device`] when libcuda is
    /// missing, no such device exists, or the driver cannot create a context.
    pub fn new(ordinal: usize) -> Result<Self> {
        if !Self::library_present() {
            return Err(Error::Device(
                "libcuda is not installed on this host (no NVIDIA driver)".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| device_err(&format!("cannot open device {ordinal}"), e))?;
        let name = ctx.name().unwrap_or_else(|_| format!("device {ordinal}"));
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| device_err("compute capability", e))?;
        let stream = ctx.default_stream();
        Ok(CudaBackend {
            ctx,
            stream,
            modules: Mutex::new(HashMap::new()),
            cubins: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            name,
            arch: format!("sm_{major}{minor}"),
        })
    }

    /// The device's architecture as `ptxas -arch` names it (`sm_90`).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Offers a cubin assembled from `module_ptx` for `arch`. When `arch` is this device's and
    /// the PTX is not loaded yet, later launches of `module_ptx` load the cubin instead of
    /// JIT-compiling the PTX (and fall back to the PTX if the driver refuses the cubin).
    /// Returns whether the cubin will be used.
    pub fn offer_cubin(&self, module_ptx: &str, arch: &str, image: &[u8]) -> bool {
        if arch != self.arch {
            return false;
        }
        let (Ok(modules), Ok(mut cubins)) = (self.modules.lock(), self.cubins.lock()) else {
            return false;
        };
        if modules.contains_key(module_ptx) {
            return false;
        }
        cubins
            .entry(module_ptx.to_string())
            .or_insert_with(|| image.to_vec());
        true
    }

    /// The stream of queue `name`, made on its first use; the default stream once
    /// [`MAX_QUEUES`] queues exist.
    pub fn queue(&self, name: &str) -> Result<Queue> {
        let mut queues = lock(&self.queues)?;
        if let Some(s) = queues.get(name) {
            return Ok(Queue(s.clone()));
        }
        if queues.len() >= MAX_QUEUES {
            return Ok(Queue(self.stream.clone()));
        }
        let s = self
            .ctx
            .new_stream()
            .map_err(|e| device_err("cannot create a stream", e))?;
        queues.insert(name.to_string(), s.clone());
        Ok(Queue(s))
    }

    /// The context's default stream.
    pub fn default_queue(&self) -> Queue {
        Queue(self.stream.clone())
    }

    /// The device this backend runs on.
    pub fn info(&self) -> Result<DeviceInfo> {
        let attr = |a| {
            self.ctx
                .attribute(a)
                .map_err(|e| device_err("device attribute", e))
        };
        let mut driver_version = 0;
        // SAFETY: writes one int through a valid pointer.
        unsafe { sys::cuDriverGetVersion(&mut driver_version) }
            .result()
            .map_err(|e| device_err("driver version", e))?;
        Ok(DeviceInfo {
            name: self.name.clone(),
            compute_capability: self
                .ctx
                .compute_capability()
                .map_err(|e| device_err("compute capability", e))?,
            multiprocessors: attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
            memory_bytes: self
                .ctx
                .total_mem()
                .map_err(|e| device_err("memory size", e))?,
            driver_version,
        })
    }

    /// The loaded module for `module_ptx` with its parsed form (for the entries' parameter
    /// types), each made once per PTX text: a harness launches one kernel thousands of times.
    fn module(&self, module_ptx: &str) -> Result<Arc<Loaded>> {
        let mut modules = lock(&self.modules)?;
        if let Some(m) = modules.get(module_ptx) {
            return Ok(m.clone());
        }
        let parsed = parse_module(module_ptx)?;
        if module_ptx.contains('\0') {
            return Err(Error::Launch("PTX text contains a NUL byte".into()));
        }
        let from_cubin = lock(&self.cubins)?
            .remove(module_ptx)
            .and_then(|image| self.ctx.load_module(Ptx::from_binary(image)).ok());
        let cuda = match from_cubin {
            Some(m) => m,
            None => self
                .ctx
                .load_module(Ptx::from_src(module_ptx))
                .map_err(|e| device_err("the driver rejected the PTX module", e))?,
        };
        let loaded = Arc::new(Loaded { cuda, parsed });
        modules.insert(module_ptx.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// [`Backend::launch`] on `queue` (from [`CudaBackend::queue`]): copies in, launch and
    /// copies out are ordered on that queue's stream only, and the call returns when they are done.
    pub fn launch_on(
        &self,
        queue: &Queue,
        module_ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> Result<LaunchStats> {
        check_dims(launch)?;
        // Driver calls below that cudarc does not wrap need the context current on this thread.
        self.ctx
            .bind_to_thread()
            .map_err(|e| device_err("cannot use the device on this thread", e))?;
        let (ctx, stream) = (self.ctx.clone(), queue.0.clone());
        let loaded = self.module(module_ptx)?;

        let decl = loaded
            .parsed
            .entry(entry)
            .ok_or_else(|| Error::UnknownEntry(entry.to_string()))?;
        // The entry exists in the parsed module, so its name has no NUL byte (cudarc would
        // panic on one).
        let func = loaded
            .cuda
            .load_function(entry)
            .map_err(|e| device_err(&format!("cannot load entry `{entry}`"), e))?;

        // Every buffer to the device (at least one byte each, so each has an address).
        let mut device: Vec<CudaSlice<u8>> = Vec::with_capacity(mem.len());
        let mut addresses = Vec::with_capacity(mem.len());
        for i in 0..mem.len() {
            let id = mem.id(i).ok_or(Error::UnknownBuffer(i as u32))?;
            let host = mem.read(id)?;
            let slice = if host.is_empty() {
                stream.alloc_zeros::<u8>(1)
            } else {
                stream.clone_htod(host)
            }
            .map_err(|e| device_err("copy to device", e))?;
            let ptr = slice.device_ptr(&stream).0;
            addresses.push(ptr);
            device.push(slice);
        }
        let address = |id: crate::memory::BufferId| -> Result<u64> {
            addresses
                .get(id.index() as usize)
                .copied()
                .ok_or(Error::UnknownBuffer(id.index()))
        };
        let mut values = encode_params(
            decl.params.iter().map(|p| (p.name.as_str(), p.ty)),
            launch,
            &address,
        )?;
        let mut args: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v.as_mut_ptr().cast::<c_void>())
            .collect();

        let timing = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = ctx.new_event(timing).map_err(|e| device_err("event", e))?;
        let end = ctx.new_event(timing).map_err(|e| device_err("event", e))?;
        start.record(&stream).map_err(|e| device_err("event", e))?;
        let [gx, gy, gz] = launch.grid;
        let [bx, by, bz] = launch.block;
        // SAFETY: `func` comes from a module this context holds; `args` has one pointer per
        // parameter the entry declares (checked above), each to bytes of the declared width
        // (encode_param) that live until after the call, which copies them; every buffer the
        // parameters point into is owned by `device`, which outlives the synchronize below.
        unsafe {
            result::launch_kernel(
                func.cu_function(),
                (gx, gy, gz),
                (bx, by, bz),
                0,
                stream.cu_stream(),
                &mut args,
            )
        }
        .map_err(|e| device_err("launch", e))?;
        end.record(&stream).map_err(|e| device_err("event", e))?;
        stream
            .synchronize()
            .map_err(|e| device_err("the kernel failed on the device", e))?;
        let ms = start.elapsed_ms(&end).map_err(|e| device_err("event", e))?;

        // Every buffer back.
        for (i, slice) in device.iter().enumerate() {
            let id = mem.id(i).ok_or(Error::UnknownBuffer(i as u32))?;
            let len = mem.read(id)?.len();
            if len == 0 {
                continue;
            }
            let host = stream
                .clone_dtoh(&slice.slice(0..len))
                .map_err(|e| device_err("copy from device", e))?;
            mem.write(id, &host)?;
        }
        let blocks = u64::from(gx) * u64::from(gy) * u64::from(gz);
        Ok(LaunchStats {
            blocks,
            threads: blocks * u64::from(bx) * u64::from(by) * u64::from(bz),
            instructions: 0,
            barriers: 0,
            gpu_ns: (f64::from(ms) * 1e6) as u64,
        })
    }
}

/// A PTX module loaded into the context, and its parsed form.
#[derive(Debug)]
struct Loaded {
    cuda: Arc<CudaModule>,
    parsed: PtxModule,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::Device("a launch panicked while holding the device's state".into()))
}

impl Backend for CudaBackend {
    fn name(&self) -> &str {
        "cuda"
    }

    fn launch(
        &mut self,
        module_ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> Result<LaunchStats> {
        self.launch_on(&self.default_queue(), module_ptx, entry, launch, mem)
    }
}
