;; Weft's misbehaving test guest, speaking waPC. The first payload byte picks what it does; the
;; next four (little-endian i32) are its argument.
;;   e echo the payload            l loop forever               a grow memory by ARG pages
;;   r recurse until the stack ends p __guest_response(65500, 1000) with 64 KiB of memory
;;   q __guest_request into memory past the end               L __console_log past the end
;;   n __guest_response with length -1                         g report a guest error
;;   h host call wasmcloud:keyvalue KeyValue.Get with ARG bytes of payload; answer its response
;;   t host call, then trap                                    c answer how many calls this
;;   R answer ARG bytes                                          instance has served (i32)
;;   B host call whose binding name lies past the end of memory
;;   W host call, then __host_response into memory past the end
;;   G __guest_error with a message past the end of memory
;;   w log {"level":"info","text":"hi"} through wasmcloud:builtin:logging; relay any host error
;;   E __guest_error with the first ARG bytes of memory as its message
;;   C log ARG console lines of 1 KiB ("console-line" then zeros), then do what w does
(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wapc" "__guest_error" (func $err (param i32 i32)))
  (import "wapc" "__host_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response" (func $hresp (param i32)))
  (import "wapc" "__host_response_len" (func $hresp_len (result i32)))
  (import "wapc" "__host_error" (func $herr (param i32)))
  (import "wapc" "__host_error_len" (func $herr_len (result i32)))
  (import "wapc" "__console_log" (func $log (param i32 i32)))
  (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 0) "wasmcloud:keyvalue")
  (data (i32.const 32) "default")
  (data (i32.const 48) "KeyValue.Get")
  (data (i32.const 64) "boom")
  (data (i32.const 80) "wasmcloud:builtin:logging")
  (data (i32.const 112) "Logging.WriteLog")
  (data (i32.const 136) "\82\a5level\a4info\a4text\a2hi")
  (data (i32.const 160) "console-line")
  (func $arg (result i32) (i32.load (i32.const 257)))
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $host_call_kv (result i32)
    (call $call (i32.const 32) (i32.const 7) (i32.const 0) (i32.const 18)
                (i32.const 48) (i32.const 12) (i32.const 0) (call $arg)))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $cmd i32)
    (local $i i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $req (i32.const 128) (i32.const 256))
    (local.set $cmd (i32.load8_u (i32.const 256)))
    (if (i32.eq (local.get $cmd) (i32.const 101)) ;; e
      (then (call $resp (i32.const 256) (local.get $msg_len)) (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 108)) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $cmd) (i32.const 97)) ;; a
      (then
        (if (i32.eq (memory.grow (call $arg)) (i32.const -1)) (then unreachable))
        (call $resp (i32.const 256) (i32.const 1))
        (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 114)) ;; r
      (then (drop (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get $cmd) (i32.const 112)) ;; p
      (then (call $resp (i32.const 65500) (i32.const 1000)) (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 113)) ;; q
      (then (call $req (i32.const 65535) (i32.const 65535)) (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 76)) ;; L
      (then (call $log (i32.const 65000) (i32.const 4096)) (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 110)) ;; n
      (then (call $resp (i32.const 0) (i32.const -1)) (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 103)) ;; g
      (then (call $err (i32.const 64) (i32.const 4)) (return (i32.const 0))))
    (if (i32.eq (local.get $cmd) (i32.const 69)) ;; E
      (then (call $err (i32.const 0) (call $arg)) (return (i32.const 0))))
    (if (i32.eq (local.get $cmd) (i32.const 104)) ;; h
      (then
        (if (call $host_call_kv)
          (then
            (call $hresp (i32.const 1024))
            (call $resp (i32.const 1024) (call $hresp_len))
            (return (i32.const 1)))
          (else
            (call $herr (i32.const 1024))
            (call $err (i32.const 1024) (call $herr_len))
            (return (i32.const 0))))))
    (if (i32.eq (local.get $cmd) (i32.const 116)) ;; t
      (then (drop (call $host_call_kv)) unreachable))
    (if (i32.eq (local.get $cmd) (i32.const 99)) ;; c
      (then
        (i32.store (i32.const 512) (global.get $calls))
        (call $resp (i32.const 512) (i32.const 4))
        (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 66)) ;; B
      (then
        (drop (call $call (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 18)
                          (i32.const 48) (i32.const 12) (i32.const 0) (i32.const 1)))
        (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 87)) ;; W
      (then
        (drop (call $host_call_kv))
        (call $hresp (i32.const 65535))
        (return (i32.const 1))))
    (if (i32.eq (local.get $cmd) (i32.const 71)) ;; G
      (then (call $err (i32.const 65530) (i32.const 100)) (return (i32.const 0))))
    (if (i32.eq (local.get $cmd) (i32.const 67)) ;; C
      (then
        (block $done
          (loop $lines
            (br_if $done (i32.ge_s (local.get $i) (call $arg)))
            (call $log (i32.const 160) (i32.const 1024))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $lines)))
        (local.set $cmd (i32.const 119))))
    (if (i32.eq (local.get $cmd) (i32.const 119)) ;; w
      (then
        (if (call $call (i32.const 32) (i32.const 7) (i32.const 80) (i32.const 25)
                        (i32.const 112) (i32.const 16) (i32.const 136) (i32.const 20))
          (then (call $resp (i32.const 64) (i32.const 4)) (return (i32.const 1)))
          (else
            (call $herr (i32.const 1024))
            (call $err (i32.const 1024) (call $herr_len))
            (return (i32.const 0))))))
    (if (i32.eq (local.get $cmd) (i32.const 82)) ;; R
      (then (call $resp (i32.const 0) (call $arg)) (return (i32.const 1))))
    unreachable))
