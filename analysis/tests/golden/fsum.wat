;; s += a[i]: a float sum reduction.
(module
  (memory 1)
  (func $sum (param $a i32) (param $n i32) (result f32)
    (local $i i32) (local $s f32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      loop
        local.get $s
        local.get $a
        local.get $i
        i32.const 2
        i32.shl
        i32.add
        f32.load
        f32.add
        local.set $s
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.lt_s
        br_if 0
      end
    end
    local.get $s))
