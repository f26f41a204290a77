#!/bin/sh
# Guest side of bench/transport-vm.ts (plain sh in the VM's chroot of the host's /, cwd = repo root).
# Two CUSE servers up at once in one boot: ours (`virtgpu-emu serve --transport cuse`) and libfuse3's example/cuse.c
# (built -static on the host, single-threaded). Rows are interleaved REPS times so drift hits every row alike.
# Console: "@@BENCH REP ROW {cuse_rt json}" per measurement, "@@BENCH-ERR ..." on failure.
# Env: BENCH_BIN (dir holding cuse_rt, cuse_example, cuse_client), BENCH_N (2000), BENCH_REPS (3), BENCH_MINOR (129).
BIN=${BENCH_BIN:?}
N=${BENCH_N:-2000}
REPS=${BENCH_REPS:-3}
MINOR=${BENCH_MINOR:-129}
J=${VM_JOB_DIR:?}
OURS=/dev/dri/renderD$MINOR
FIOC=/dev/virtgpu-bench-fioc

wait_for() { # FILE-TEST PATH TENTHS
  i=0
  while [ "$i" -lt "$3" ]; do test "$1" "$2" && return 0; sleep 0.1; i=$((i + 1)); done
  return 1
}

"$BIN/cuse_example" -f -s --name=virtgpu-bench-fioc >"$J/example.log" 2>&1 &
EXAMPLE=$!
node dist/cli/main.js serve --transport cuse --minor "$MINOR" >"$J/serve.out" 2>"$J/serve.err" &
SERVER=$!
wait_for -c "$FIOC" 100 || { echo "@@BENCH-ERR libfuse example: no $FIOC"; cat "$J/example.log"; exit 1; }
i=0
while ! grep -q '^virtgpu-emu: serving ' "$J/serve.out" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -gt 300 ] && { echo "@@BENCH-ERR our server: no ready line"; cat "$J/serve.err"; exit 1; }
  sleep 0.1
done
cat "$J/serve.out"
# The example's buffer starts empty: give FIOC_READ 64 bytes to read from (cuse_client's SET_SIZE).
"$BIN/cuse_client" "$FIOC" s 64 || echo "@@BENCH-ERR cuse_client s 64 failed"

row() { # ROW DEVICE MODE N
  out=$("$BIN/cuse_rt" -n "$4" -m "$3" "$2" 2>&1) || { echo "@@BENCH-ERR $1: $out"; return; }
  echo "@@BENCH $rep $1 $out"
}
rep=1
while [ "$rep" -le "$REPS" ]; do
  row devnull /dev/null raw:0x541b $((N * 20))        # FIONREAD: ENOTTY, the plain syscall
  row ours-noop "$OURS" raw:0x6400 "$N"                 # _IO('d', 0): no data, 1 round trip
  row fioc-noop "$FIOC" raw:0x4509 "$N"                 # _IO('E', 9): unknown → EINVAL, 1 round trip
  row ours-getcap "$OURS" getcap "$N"                   # GET_CAP _IOWR 16: RETRY struct, answer: 2
  row fioc-getsize "$FIOC" raw:0x80084500 "$N"          # FIOC_GET_SIZE _IOR 8: RETRY out, answer: 2
  row ours-getparam "$OURS" getparam "$N"               # GETPARAM: RETRY struct, RETRY + value ptr, answer: 3
  row fioc-read "$FIOC" fioc-read "$N"                  # FIOC_READ: RETRY struct, RETRY + buf ptr, answer: 3
  rep=$((rep + 1))
done

kill -TERM "$SERVER" "$EXAMPLE"
wait "$SERVER"
wait "$EXAMPLE"
grep '^virtgpu-emu: stopped' "$J/serve.out"
