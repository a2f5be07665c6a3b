;; c[i*n+j] = sum_k a[i*n+k] * b[k*n+j]: a 3-deep nest, the f32 sum carried only by the k loop.
(module
  (memory 1)
  (func $matmul (param $a i32) (param $b i32) (param $c i32) (param $n i32)
    (local $i i32) (local $j i32) (local $k i32) (local $sum f32)
    block
      local.get $n
      i32.const 1
      i32.lt_s
      br_if 0
      i32.const 0
      local.set $i
      loop
        i32.const 0
        local.set $j
        loop
          f32.const 0
          local.set $sum
          i32.const 0
          local.set $k
          loop
            local.get $sum
            local.get $a
            local.get $i
            local.get $n
            i32.mul
            local.get $k
            i32.add
            i32.const 2
            i32.shl
            i32.add
            f32.load
            local.get $b
            local.get $k
            local.get $n
            i32.mul
            local.get $j
            i32.add
            i32.const 2
            i32.shl
            i32.add
            f32.load
            f32.mul
            f32.add
            local.set $sum
            local.get $k
            i32.const 1
            i32.add
            local.tee $k
            local.get $n
            i32.ne
            br_if 0
          end
          local.get $c
          local.get $i
          local.get $n
          i32.mul
          local.get $j
          i32.add
          i32.const 2
          i32.shl
          i32.add
          local.get $sum
          f32.store
          local.get $j
          i32.const 1
          i32.add
          local.tee $j
          local.get $n
          i32.ne
          br_if 0
        end
        local.get $i
        i32.const 1
        i32.add
        local.tee $i
        local.get $n
        i32.ne
        br_if 0
      end
    end))
