;; Reference for the `conv2d` kernel emitted with the tiled-conv2d blueprint: a valid
;; single-channel 2-D convolution (cross-correlation) over f32, row-major: `in` is
;; (oh + kh - 1) x (ow + kw - 1), `k` is kh x kw, `out` is oh x ow, and each
;; out[y][x] sums in[y+ky][x+kx] * k[ky][kx] for ky = 0 .. kh-1, then kx = 0 .. kw-1, from +0.
(module
  (memory (export "memory") 1)
  (func (export "conv2d")
    (param $in i32) (param $k i32) (param $out i32)
    (param $oh i32) (param $ow i32) (param $kh i32) (param $kw i32)
    (local $w i32) (local $y i32) (local $x i32) (local $ky i32) (local $kx i32) (local $acc f32)
    (local.set $w (i32.sub (i32.add (local.get $ow) (local.get $kw)) (i32.const 1)))
    (block $done_y
      (loop $next_y
        (br_if $done_y (i32.ge_s (local.get $y) (local.get $oh)))
        (local.set $x (i32.const 0))
        (block $done_x
          (loop $next_x
            (br_if $done_x (i32.ge_s (local.get $x) (local.get $ow)))
            (local.set $acc (f32.const 0))
            (local.set $ky (i32.const 0))
            (block $done_ky
              (loop $next_ky
                (br_if $done_ky (i32.ge_s (local.get $ky) (local.get $kh)))
                (local.set $kx (i32.const 0))
                (block $done_kx
                  (loop $next_kx
                    (br_if $done_kx (i32.ge_s (local.get $kx) (local.get $kw)))
                    (local.set $acc
                      (f32.add
                        (local.get $acc)
                        (f32.mul
                          (f32.load (i32.add (local.get $in)
                            (i32.shl
                              (i32.add
                                (i32.mul (i32.add (local.get $y) (local.get $ky)) (local.get $w))
                                (i32.add (local.get $x) (local.get $kx)))
                              (i32.const 2))))
                          (f32.load (i32.add (local.get $k)
                            (i32.shl
                              (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx))
                              (i32.const 2)))))))
                    (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                    (br $next_kx)))
                (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
                (br $next_ky)))
            (f32.store
              (i32.add (local.get $out)
                (i32.shl (i32.add (i32.mul (local.get $y) (local.get $ow)) (local.get $x))
                         (i32.const 2)))
              (local.get $acc))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $next_x)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $next_y)))))
