;; Reference for the `stencil2d` kernel emitted with the tiled-stencil blueprint: a 5-point
;; stencil over the interior of a w x h row-major f32 grid,
;; out[i][j] = 0.25 * (((in[i-1][j] + in[i+1][j]) + in[i][j-1]) + in[i][j+1])
;; for 1 <= i < h-1, 1 <= j < w-1; the border of `out` is left as it is.
(module
  (memory (export "memory") 1)
  (func $at (param $p i32) (param $w i32) (param $i i32) (param $j i32) (result f32)
    (f32.load (i32.add (local.get $p)
      (i32.shl (i32.add (i32.mul (local.get $i) (local.get $w)) (local.get $j)) (i32.const 2)))))
  (func (export "stencil2d")
    (param $in i32) (param $out i32) (param $w i32) (param $h i32)
    (local $i i32) (local $j i32)
    (local.set $i (i32.const 1))
    (block $done_i
      (loop $next_i
        (br_if $done_i (i32.ge_s (local.get $i) (i32.sub (local.get $h) (i32.const 1))))
        (local.set $j (i32.const 1))
        (block $done_j
          (loop $next_j
            (br_if $done_j (i32.ge_s (local.get $j) (i32.sub (local.get $w) (i32.const 1))))
            (f32.store
              (i32.add (local.get $out)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $w)) (local.get $j))
                         (i32.const 2)))
              (f32.mul
                (f32.const 0.25)
                (f32.add
                  (f32.add
                    (f32.add
                      (call $at (local.get $in) (local.get $w)
                        (i32.sub (local.get $i) (i32.const 1)) (local.get $j))
                      (call $at (local.get $in) (local.get $w)
                        (i32.add (local.get $i) (i32.const 1)) (local.get $j)))
                    (call $at (local.get $in) (local.get $w)
                      (local.get $i) (i32.sub (local.get $j) (i32.const 1))))
                  (call $at (local.get $in) (local.get $w)
                    (local.get $i) (i32.add (local.get $j) (i32.const 1))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $next_j)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_i)))))
