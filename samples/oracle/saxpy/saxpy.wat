;; Reference for the `saxpy` blueprint kernel: y[i] = alpha * x[i] + y[i] over f32, for i < n.
;; Wasm rounds the product and the sum separately: a kernel that fuses them into one fma
;; computes different bits (samples/oracle/buggy/saxpy_fma.ptx).
(module
  (memory (export "memory") 1)
  (func (export "saxpy") (param $x i32) (param $y i32) (param $alpha f32) (param $n i32)
    (local $i i32) (local $yi i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $yi (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
        (f32.store
          (local.get $yi)
          (f32.add
            (f32.mul
              (local.get $alpha)
              (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
            (f32.load (local.get $yi))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
