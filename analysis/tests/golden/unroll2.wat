;; a[i] *= 2 unrolled by 2 (pointer walk, end pointer), then a remainder loop.
(module
  (memory 1)
  (func $scale (param $a i32) (param $n i32)
    (local $end i32) (local $rem i32)
    block
      local.get $n
      i32.const 2
      i32.lt_u
      br_if 0
      local.get $a
      local.get $n
      i32.const -2
      i32.and
      i32.const 2
      i32.shl
      i32.add
      local.set $end
      loop
        local.get $a
        local.get $a
        f32.load
        f32.const 2
        f32.mul
        f32.store
        local.get $a
        local.get $a
        f32.load offset=4
        f32.const 2
        f32.mul
        f32.store offset=4
        local.get $a
        i32.const 8
        i32.add
        local.tee $a
        local.get $end
        i32.ne
        br_if 0
      end
    end
    local.get $n
    i32.const 1
    i32.and
    local.set $rem
    block
      local.get $rem
      i32.eqz
      br_if 0
      loop
        local.get $a
        local.get $a
        f32.load
        f32.const 2
        f32.mul
        f32.store
        local.get $a
        i32.const 4
        i32.add
        local.set $a
        local.get $rem
        i32.const 1
        i32.sub
        local.tee $rem
        i32.const 0
        i32.gt_s
        br_if 0
      end
    end))
