;; while (i != n) { a[i] = 0; n = a[n]; i++ }: the bound changes inside the loop; also a global write.
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func $weird (param $a i32) (param $n i32)
    (local $i i32)
    loop
      local.get $a
      local.get $i
      i32.add
      i32.const 0
      i32.store8
      local.get $a
      local.get $n
      i32.add
      i32.load8_u
      local.set $n
      local.get $i
      global.set $g
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      local.get $n
      i32.ne
      br_if 0
    end))
