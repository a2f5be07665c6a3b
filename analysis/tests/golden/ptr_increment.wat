;; saxpy y[i] += a * x[i] after strength reduction: pointers walk, a counter counts down.
(module
  (memory 1)
  (func $saxpy (param $x i32) (param $y i32) (param $a f32) (param $n i32)
    block
      local.get $n
      i32.eqz
      br_if 0
      loop
        local.get $y
        local.get $a
        local.get $x
        f32.load
        f32.mul
        local.get $y
        f32.load
        f32.add
        f32.store
        local.get $x
        i32.const 4
        i32.add
        local.set $x
        local.get $y
        i32.const 4
        i32.add
        local.set $y
        local.get $n
        i32.const -1
        i32.add
        local.tee $n
        br_if 0
      end
    end))
