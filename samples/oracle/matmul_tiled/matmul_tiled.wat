;; Reference for the `matmul` kernel emitted with the tiled-matmul blueprint: c = a * b over f32, row-major, a is m x k,
;; b is k x n, c is m x n; each c[i][j] sums a[i][l] * b[l][j] for l = 0, 1, ..., k-1 from +0.
(module
  (memory (export "memory") 1)
  (func (export "matmul")
    (param $a i32) (param $b i32) (param $c i32) (param $m i32) (param $n i32) (param $k i32)
    (local $i i32) (local $j i32) (local $l i32) (local $acc f32)
    (block $done_i
      (loop $next_i
        (br_if $done_i (i32.ge_s (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (block $done_j
          (loop $next_j
            (br_if $done_j (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $acc (f32.const 0))
            (local.set $l (i32.const 0))
            (block $done_l
              (loop $next_l
                (br_if $done_l (i32.ge_s (local.get $l) (local.get $k)))
                (local.set $acc
                  (f32.add
                    (local.get $acc)
                    (f32.mul
                      (f32.load (i32.add (local.get $a)
                        (i32.shl (i32.add (i32.mul (local.get $i) (local.get $k)) (local.get $l))
                                 (i32.const 2))))
                      (f32.load (i32.add (local.get $b)
                        (i32.shl (i32.add (i32.mul (local.get $l) (local.get $n)) (local.get $j))
                                 (i32.const 2)))))))
                (local.set $l (i32.add (local.get $l) (i32.const 1)))
                (br $next_l)))
            (f32.store
              (i32.add (local.get $c)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j))
                         (i32.const 2)))
              (local.get $acc))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $next_j)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_i)))))
