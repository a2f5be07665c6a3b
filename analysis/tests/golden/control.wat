;; Structured control: if/else with results, block results, br_table, unreachable, early return,
;; a loop with a parameter (multi-value).
(module
  (func $ctl (param $x i32) (result i32)
    (local $t i32)
    block (result i32)
      local.get $x
      if (result i32)
        i32.const 1
      else
        i32.const 2
      end
      local.get $x
      br_if 0
      drop
      block
        block
          local.get $x
          br_table 0 1 1
        end
        unreachable
      end
      i32.const 3
    end
    local.set $t
    local.get $t
    i32.eqz
    if
      i32.const 7
      return
    end
    i32.const 10
    loop (param i32) (result i32)
      i32.const 1
      i32.sub
      local.tee $t
      local.get $t
      br_if 0
    end))
