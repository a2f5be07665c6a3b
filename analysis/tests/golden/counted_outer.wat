;; A parallel loop inside a rejected loop is decided on its own only when the rejected loop is
;; counted. `steps`: a counted loop (t steps) around a copy; it carries a dependence (each step
;; bumps dst[0], which the copy overwrites), so it is rejected and the copy is a nest of its
;; own. `scan`: the same copy inside a loop that runs until a zero byte (no trip count): the
;; copy is not decided on its own and keeps the outer nest's verdict.
(module
  (memory 1)
  (func $steps (param $dst i32) (param $src i32) (param $n i32) (param $t i32)
    (local $i i32) (local $s i32)
    (block $done
      (loop $step
        (br_if $done (i32.ge_s (local.get $s) (local.get $t)))
        (local.set $i (i32.const 0))
        (block $copied
          (loop $copy
            (br_if $copied (i32.ge_s (local.get $i) (local.get $n)))
            (i32.store
              (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
              (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $copy)))
        (i32.store (local.get $dst) (i32.add (i32.load (local.get $dst)) (i32.const 1)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $step))))
  (func $scan (param $dst i32) (param $src i32) (param $n i32) (param $p i32)
    (local $i i32)
    (block $done
      (loop $step
        (br_if $done (i32.eqz (i32.load8_u (local.get $p))))
        (local.set $i (i32.const 0))
        (block $copied
          (loop $copy
            (br_if $copied (i32.ge_s (local.get $i) (local.get $n)))
            (i32.store
              (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
              (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $copy)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $step)))))
