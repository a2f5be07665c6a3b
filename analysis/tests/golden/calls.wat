;; a[i] = f(a[i]): a call in the body; the loop is top-tested.
(module
  (import "env" "f" (func $f (param f32) (result f32)))
  (memory 1)
  (func $apply (param $a i32) (param $n i32)
    (local $i i32)
    block
      loop
        local.get $i
        local.get $n
        i32.ge_s
        br_if 1
        local.get $a
        local.get $i
        i32.const 2
        i32.shl
        i32.add
        local.get $a
        local.get $i
        i32.const 2
        i32.shl
        i32.add
        f32.load
        call $f
        f32.store
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br 0
      end
    end))
