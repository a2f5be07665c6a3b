;; A WASI command: prints a greeting and its first argument, and exits with the number of
;; arguments it was given (so the runner's exit-code passthrough can be checked).
;;   tensorwasm run hello-wasi.twb --trusted KEY.pub -- world   → "hello, world", exit 1
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0..8: iovec; 8..12: nwritten; 12..16: argc; 16..20: argv buf size;
  ;; 64..: "hello, "; 1024..: argv pointers; 2048..: argv strings.
  (data (i32.const 64) "hello, ")
  (data (i32.const 80) "stranger")
  (data (i32.const 96) "\n")

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $scan
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $scan)))
    local.get $n)

  (func (export "_start")
    (local $argc i32)
    (local $arg i32)
    (drop (call $args_sizes_get (i32.const 12) (i32.const 16)))
    (local.set $argc (i32.load (i32.const 12)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (call $write (i32.const 64) (i32.const 7))
    (if (i32.gt_u (local.get $argc) (i32.const 1))
      (then
        (local.set $arg (i32.load (i32.const 1028)))
        (call $write (local.get $arg) (call $strlen (local.get $arg))))
      (else
        (call $write (i32.const 80) (i32.const 8))))
    (call $write (i32.const 96) (i32.const 1))
    (call $proc_exit (i32.sub (local.get $argc) (i32.const 1)))))
