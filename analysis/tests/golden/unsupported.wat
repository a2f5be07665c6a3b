;; An exception-handling operator the front end does not model, inside a loop.
(module
  (tag $e)
  (func $thrower (param $n i32)
    (local $i i32)
    loop
      block
        try_table (catch $e 0)
          local.get $i
          i32.const 5
          i32.eq
          if
            throw $e
          end
        end
      end
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      local.get $n
      i32.ne
      br_if 0
    end))
