;; Reference for the `vadd` blueprint kernel: c[i] = a[i] + b[i] over f32, for i < n.
;; a, b and c are Wasm addresses of the arrays; the kernel gets device copies of them.
(module
  (memory (export "memory") 1)
  (func (export "vadd") (param $a i32) (param $b i32) (param $c i32) (param $n i32)
    (local $i i32) (local $off i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (f32.store
          (i32.add (local.get $c) (local.get $off))
          (f32.add
            (f32.load (i32.add (local.get $a) (local.get $off)))
            (f32.load (i32.add (local.get $b) (local.get $off)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
