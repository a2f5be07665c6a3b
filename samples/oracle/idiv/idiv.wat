;; Reference for the `idiv` blueprint kernel: q[i] = a[i] / b[i] (i32.div_s), for i < n.
;; Wasm traps on a zero divisor and on -2147483648 / -1; the kernel must then raise its trap
;; flag (so the host declines and the CPU loop traps where Wasm says).
(module
  (memory (export "memory") 1)
  (func (export "idiv") (param $a i32) (param $b i32) (param $q i32) (param $n i32)
    (local $i i32) (local $off i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (i32.store
          (i32.add (local.get $q) (local.get $off))
          (i32.div_s
            (i32.load (i32.add (local.get $a) (local.get $off)))
            (i32.load (i32.add (local.get $b) (local.get $off)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
