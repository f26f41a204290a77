#!/usr/bin/env bash
# Flake hunt: clone the committed HEAD into a fresh temporary folder and run the README's test command (`npm test`,
# with ava's TAP output) N times there; report each run's pass/fail counts and the tests that failed, then a summary.
#   scripts/flaky.sh [N=3] [--keep]      (--keep: leave the clone and the runs' logs in place)
# Exit status: 0 when every run passed, 1 otherwise.
set -uo pipefail

n=3 keep=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    ''|*[!0-9]*) echo "usage: $0 [N] [--keep]" >&2; exit 2 ;;
    *) n=$a ;;
  esac
done
((n >= 1)) || { echo "usage: $0 [N] [--keep]" >&2; exit 2; }

src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel) || exit 2
rev=$(git -C "$src" rev-parse HEAD) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/virtgpu-emu-flaky.XXXXXX")
cleanup() { if ((keep)); then echo "kept: $tmp" >&2; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

if ! git -c advice.detachedHead=false clone -q "$src" "$tmp/repo" || ! git -C "$tmp/repo" checkout -q --detach "$rev"; then
  echo "flaky: cannot clone $rev" >&2
  exit 2
fi
[ -z "$(git -C "$src" status --porcelain)" ] || echo "flaky: note: uncommitted changes in the work tree are not tested" >&2
echo "flaky: commit $(git -C "$src" log -1 --format='%h %s' "$rev"), $n run(s) in $tmp/repo"

failed_runs=0
declare -A fail_count=()
for ((i = 1; i <= n; i++)); do
  log="$tmp/run-$i.tap"
  t0=$(date +%s)
  (cd "$tmp/repo" && npm test -- --tap) >"$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - t0))
  pass=$(grep -cE '^ok [0-9]+' "$log")
  skip=$(grep -cE '^ok [0-9]+ .*# SKIP' "$log")
  fail=$(grep -cE '^not ok [0-9]+' "$log")
  if ((rc != 0 || fail > 0)); then
    failed_runs=$((failed_runs + 1)); verdict=FAIL
  else
    verdict=pass
  fi
  echo "run $i/$n: $verdict (exit $rc, ${secs}s): $((pass - skip)) passed, $fail failed, $skip skipped"
  # TAP failure lines: "not ok 12 - file › title"; a crashed worker is reported the same way by ava.
  while IFS= read -r line; do
    name=${line#not ok * - }
    echo "  failed: $name"
    fail_count[$name]=$((${fail_count[$name]:-0} + 1))
  done < <(grep -E '^not ok [0-9]+' "$log")
  if ((rc != 0 && fail == 0)); then
    echo "  no failed test in the TAP output; the last lines of the run:"
    tail -n 15 "$log" | sed 's/^/    /'
  fi
done

for name in "${!fail_count[@]}"; do echo "flaky: ${fail_count[$name]}/$n runs failed: $name"; done | sort
echo "flaky: $((n - failed_runs))/$n runs passed, $failed_runs failed (commit ${rev:0:12})"
((failed_runs == 0))
