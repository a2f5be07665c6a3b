;; A loop that leaves from the middle of an iteration (clang's shape for a fixed count of list
;; heads unrolled by 2: the exit test sits between the halves). The iteration that leaves runs
;; the first half's stores, 16 times against 15 for the second half; a kernel of whole
;; iterations would miss the last first half, so `heads` is rejected (partial-iteration).
;; `top` is the control: only the compare runs before its exit, and it is offloadable.
;; (Before this rule `heads` was a candidate, and `tensorwasm build` of this file kept it out of
;; the bundle only because its oracle found the last first half missing: "memory differs at
;; address p + 240".)
(module
  (memory (export "memory") 1)
  (func $heads (param $p i32)
    (local $i i32) (local $a i32)
    (block $done
      (loop $next
        (local.set $a (i32.add (local.get $p) (local.get $i)))
        (i32.store offset=4 (local.get $a) (local.get $a))
        (i32.store (local.get $a) (local.get $a))
        (br_if $done (i32.eq (local.get $i) (i32.const 240)))
        (i32.store offset=12 (local.get $a) (i32.add (local.get $a) (i32.const 8)))
        (i32.store offset=8 (local.get $a) (i32.add (local.get $a) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))
  (func $top (param $p i32) (param $n i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store
          (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
          (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
