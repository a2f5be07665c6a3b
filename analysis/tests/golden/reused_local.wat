;; clang reuses locals: $a first holds the store address of the iteration (set by local.tee,
;; used by the first store and by the second store in both arms of a branch), then, after those
;; uses, a loaded byte. Only the address reaches the stores, so the nest is offloadable: the
;; loaded value written to $a at the end of one iteration is overwritten before any use in the
;; next. `chase` is the control: there the loaded value does reach a store address (through the
;; back edge), and the nest is rejected with store-address-from-load.
(module
  (memory 1)
  (func $threshold (param $out i32) (param $in i32) (param $low i32) (param $n i32) (param $t i32)
    (local $i i32) (local $a i32) (local $v i32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      loop
        ;; v = in[2i]; out[2i] = v > t ? 255 : v >> 1
        local.get $in
        local.get $i
        i32.const 1
        i32.shl
        i32.add
        i32.load8_u
        local.set $v
        local.get $out
        local.get $i
        i32.const 1
        i32.shl
        i32.add
        local.tee $a
        i32.const 255
        local.get $v
        i32.const 1
        i32.shr_u
        local.get $v
        local.get $t
        i32.gt_u
        select
        i32.store8
        ;; v = in[2i+1]; a branch, each arm storing through $a
        local.get $in
        local.get $i
        i32.const 1
        i32.shl
        i32.add
        i32.load8_u offset=1
        local.tee $v
        local.get $t
        i32.gt_u
        if
          local.get $a
          i32.const 255
          i32.store8 offset=1
        else
          local.get $a
          local.get $v
          i32.const 1
          i32.shr_u
          i32.store8 offset=1
        end
        ;; $a now holds a loaded byte: low[i] = in[2i] >> 1
        local.get $in
        local.get $i
        i32.const 1
        i32.shl
        i32.add
        i32.load8_u
        local.set $a
        local.get $low
        local.get $i
        i32.add
        local.get $a
        i32.const 1
        i32.shr_u
        i32.store8
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.ne
        br_if 0
      end
    end)
  (func $chase (param $p i32) (param $n i32)
    (local $i i32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      loop
        ;; *p = i; p = *(p + 4): the next iteration stores through a loaded address
        local.get $p
        local.get $i
        i32.store
        local.get $p
        i32.load offset=4
        local.set $p
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.ne
        br_if 0
      end
    end))
