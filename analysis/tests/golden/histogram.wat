;; h[x[i]] += 1: the store address comes from a load.
(module
  (memory 1)
  (func $hist (param $x i32) (param $h i32) (param $n i32)
    (local $i i32) (local $p i32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      loop
        local.get $h
        local.get $x
        local.get $i
        i32.const 2
        i32.shl
        i32.add
        i32.load
        i32.const 2
        i32.shl
        i32.add
        local.tee $p
        local.get $p
        i32.load
        i32.const 1
        i32.add
        i32.store
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.ne
        br_if 0
      end
    end))
