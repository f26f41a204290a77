#!/usr/bin/env bash
# One idempotent set-up for both README commands: system packages, npm deps + addon, TypeScript, C clients.
# Fast when nothing changed (each step checks a stamp), so `npm start` / `npm test` can always call it.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'setup: %s\n' "$*" >&2; }

# 1. Debian packages: libdrm-dev (C clients), libfuse3-dev and liburing-dev (bench baselines only),
#    qemu/busybox/cpio/kmod (the CUSE VM tests, see tools/vm/README.md), chromium (the report view tests).
PKGS=(libdrm-dev libfuse3-dev liburing-dev pkg-config qemu-system-x86 busybox-static cpio kmod chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then log "missing packages ${missing[*]} and not root: install them first"; exit 1; fi
  log "apt-get install ${missing[*]}"
  # Another set-up (a second README command started meanwhile) may hold dpkg's lock: wait for it, not fail.
  wait_lock=(-o DPkg::Lock::Timeout=600)
  apt-get "${wait_lock[@]}" update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. npm dependencies; npm also runs `node-gyp rebuild` for our binding.gyp (the uffd addon).
stamp=node_modules/.virtgpu-emu-stamp
want="$(cat package.json package-lock.json binding.gyp uffd/native/*.cc uffd/native/*.c uffd/native/*.h uffd/preload/*.c uffd/preload/*.h 2>/dev/null | sha1sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm install (deps + native addon)"
  npm install --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# 3. TypeScript -> dist/ (tests, CLI and the VM all run the compiled JS).
log "tsc"
node_modules/.bin/tsc -p . >&2

# 4. C clients built against the system's libdrm and kernel headers.
if [ -f tests/c/Makefile ]; then make -s -C tests/c >&2; fi
