;; A library of exports: the smallest bundle worth running.
;;   tensorwasm run arith.twb --trusted KEY.pub --invoke add --args '[1, 2]'   → [3]
(module
  (memory (export "memory") 1)

  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add)

  ;; f32 arguments and results keep their width: scale(0.1, 3) → 0.3 (as f32).
  (func (export "scale") (param f32 f32) (result f32)
    local.get 0
    local.get 1
    f32.mul)

  (func (export "mul_wide") (param i64 i64) (result i64)
    local.get 0
    local.get 1
    i64.mul)

  ;; Traps on a zero divisor, as Wasm says.
  (func (export "div") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.div_s)

  ;; Sums the bytes of memory[ptr .. ptr+len); traps when the range leaves memory.
  (func (export "sum_bytes") (param $ptr i32) (param $len i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        local.get $len
        i32.eqz
        br_if $done
        local.get $acc
        local.get $ptr
        i32.load8_u
        i32.add
        local.set $acc
        local.get $ptr
        i32.const 1
        i32.add
        local.set $ptr
        local.get $len
        i32.const 1
        i32.sub
        local.set $len
        br $next))
    local.get $acc)

  ;; Grows memory by n pages; returns the old size or -1.
  (func (export "grow") (param i32) (result i32)
    local.get 0
    memory.grow)

  ;; Never returns: stopped by the wall-time limit.
  (func (export "spin")
    (loop $forever
      br $forever)))
