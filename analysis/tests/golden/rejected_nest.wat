;; A 2-deep nest rejected for a call in the inner body: its reasons are listed once, at the
;; outer loop; the inner loop's diagnostic points there.
(module
  (import "env" "f" (func $f (param f32) (result f32)))
  (memory 1)
  (func $apply (param $a i32) (param $n i32)
    (local $i i32) (local $j i32)
    (block $done_i
      (loop $next_i
        (br_if $done_i (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $done_j
          (loop $next_j
            (br_if $done_j (i32.ge_s (local.get $j) (local.get $n)))
            (f32.store
              (i32.add (local.get $a)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j))
                         (i32.const 2)))
              (call $f (f32.convert_i32_s (local.get $j))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $next_j)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_i)))))
