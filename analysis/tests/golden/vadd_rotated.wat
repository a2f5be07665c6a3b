;; c[i] = a[i] + b[i], i < n: clang -O2 shape with a guard and a rotated loop.
(module
  (memory 1)
  (func $vadd (param $a i32) (param $b i32) (param $c i32) (param $n i32)
    (local $i i32) (local $off i32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      i32.const 0
      local.set $i
      loop
        local.get $c
        local.get $i
        i32.const 2
        i32.shl
        local.tee $off
        i32.add
        local.get $a
        local.get $off
        i32.add
        f32.load
        local.get $b
        local.get $off
        i32.add
        f32.load
        f32.add
        f32.store
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.ne
        br_if 0
      end
    end))
