// Builds the VM's initramfs: static busybox, the FUSE/CUSE + virtio + 9p modules of the cached kernel, and /init.
// Written as a newc cpio by hand (no staging dir, deterministic) and cached by a hash of everything that goes in.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { defaultCacheDir, KernelInfo } from './kernel';

/** Modules the guest needs, in the order asked; dependencies from modules.dep are added before each. */
export const GUEST_MODULES = [
  'fuse',
  'cuse',
  'virtio_ring',
  'virtio',
  'virtio_pci_legacy_dev',
  'virtio_pci_modern_dev',
  'virtio_pci',
  'netfs',
  'fscache',
  '9pnet',
  '9pnet_virtio',
  '9p',
] as const;

/** 9p mount options; msize 256 KiB and cache=loose for the read-only host root (≈300× slower syscalls under TCG). */
export const NINEP_OPTS = 'trans=virtio,version=9p2000.L,msize=262144';
export const BUSYBOX = '/bin/busybox';
/** Guest paths used by /init; the job share carries init.conf (sourced) and cmd.sh (run in the chroot). */
export const JOB_TAG = 'job';
export const HOST_TAG = 'host';

// /init contract (see vm.ts): job share holds init.conf = shell assignments VM_TOKEN, VM_JOB (guest path of the job
// dir, = its host path), VM_SHARES ("tag=path ..." extra writable shares). Fatal errors print "vm-init: FATAL".
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /proc /sys /dev /tmp /host /job
/bin/busybox --install -s /bin
export PATH=/bin
fatal() { echo "vm-init: FATAL: $*"; poweroff -f; sleep 5; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
for m in $(cat /modules.list); do insmod /lib/modules/$m.ko || echo "vm-init: insmod $m failed"; done
mount -t 9p -o ro,${NINEP_OPTS},cache=loose ${HOST_TAG} /host || fatal "cannot mount the host root over 9p (tag ${HOST_TAG})"
mount -t 9p -o ${NINEP_OPTS} ${JOB_TAG} /job || fatal "cannot mount the job share over 9p (tag ${JOB_TAG})"
[ -f /job/init.conf ] || fatal "no init.conf in the job share"
. /job/init.conf
mount -t devtmpfs dev /host/dev || fatal "mount devtmpfs in chroot"
mount -t proc proc /host/proc || fatal "mount proc in chroot"
mount -t sysfs sys /host/sys || fatal "mount sysfs in chroot"
mount -t tmpfs run /host/run || fatal "mount tmpfs /run in chroot"
mount -t tmpfs tmp /host/tmp || fatal "mount tmpfs /tmp in chroot"
mkdir -p "/host$VM_JOB" 2>/dev/null
mount --move /job "/host$VM_JOB" || fatal "cannot move the job share to $VM_JOB"
for s in $VM_SHARES; do
  tag="\${s%%=*}"; dir="\${s#*=}"
  mkdir -p "/host$dir" 2>/dev/null
  mount -t 9p -o ${NINEP_OPTS} "$tag" "/host$dir" || fatal "cannot mount share $tag at $dir"
done
echo "@@VM-START-$VM_TOKEN uptime=$(cut -d' ' -f1 /proc/uptime)"
chroot /host /usr/bin/env -i /bin/sh "$VM_JOB/cmd.sh" </dev/null
rc=$?
echo "$rc" > "/host$VM_JOB/status"
echo "@@VM-EXIT-$VM_TOKEN status=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
sleep 5
`;

export interface InitramfsInfo {
  path: string;
  hash: string;
  /** Load order actually used (requested modules with their modules.dep closure). */
  modules: string[];
}

const normalize = (name: string) => name.replace(/-/g, '_');
const MODULE_EXT = /\.ko(\.xz|\.zst|\.gz)?$/;
const moduleName = (rel: string) => normalize(path.basename(rel).replace(MODULE_EXT, ''));

/** Parses modules.dep ("path: dep dep ...") and returns [name, path] in load order (deps first). */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): { name: string; rel: string }[] {
  const byName = new Map<string, { rel: string; deps: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const rel = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    byName.set(moduleName(rel), { rel, deps });
  }
  const out: { name: string; rel: string }[] = [];
  const done = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    if (done.has(name)) return;
    const e = byName.get(name);
    if (!e) throw new Error(`vm: module '${name}' not in modules.dep${chain.length ? ` (needed by ${chain.join(' <- ')})` : ''}`);
    if (chain.includes(name)) throw new Error(`vm: module dependency cycle ${[...chain, name].join(' -> ')}`);
    // modules.dep lists the full closure with the first-to-load last (modprobe loads it in reverse).
    for (const d of [...e.deps].reverse()) visit(moduleName(d), [...chain, name]);
    done.add(name);
    out.push({ name, rel: e.rel });
  };
  for (const w of wanted) visit(normalize(w), []);
  return out;
}

function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  const tool = file.endsWith('.xz') ? 'xz' : 'zstd';
  try {
    return execFileSync(tool, ['-dc', file], { timeout: 60_000, maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`vm: cannot decompress ${file} with ${tool}: ${(e as Error).message}`);
  }
}

// ---- newc cpio writer -------------------------------------------------------------------------------------------
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdev?: [number, number];
}

function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    off += b.length;
  };
  const pad4 = () => {
    if (off % 4) push(Buffer.alloc(4 - (off % 4)));
  };
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 } as CpioEntry]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const isDir = (e.mode & 0o170000) === S_IFDIR;
    const fields = [
      e.name === 'TRAILER!!!' ? 0 : ino++, e.mode, 0, 0, isDir ? 2 : 1, 0, data.length, 0, 0,
      e.rdev?.[0] ?? 0, e.rdev?.[1] ?? 0, name.length, 0,
    ];
    push(Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii'));
    push(name);
    pad4();
    push(data);
    pad4();
  }
  return Buffer.concat(parts);
}

/** Builds (or reuses) the initramfs for this kernel; cache key = sha256 of init, busybox and module bytes. */
export function buildInitramfs(kernel: KernelInfo, opts: { cacheDir?: string; log?: (l: string) => void } = {}): InitramfsInfo {
  if (!fs.existsSync(BUSYBOX)) throw new Error(`vm: ${BUSYBOX} missing: apt-get install busybox-static (scripts/setup.sh does)`);
  const busybox = fs.readFileSync(BUSYBOX);
  if (busybox.subarray(0, 4096).includes('ld-linux'))
    throw new Error(`vm: ${BUSYBOX} is dynamically linked: the initramfs needs busybox-static`);
  const order = moduleLoadOrder(fs.readFileSync(path.join(kernel.modulesDir, 'modules.dep'), 'utf8'), GUEST_MODULES);

  const h = createHash('sha256');
  h.update(`v1\0${INIT_SCRIPT}\0${kernel.release}\0`);
  h.update(createHash('sha256').update(busybox).digest());
  const files = order.map((m) => ({ ...m, file: path.join(kernel.modulesDir, m.rel) }));
  for (const f of files) h.update(`${f.name}\0`).update(createHash('sha256').update(fs.readFileSync(f.file)).digest());
  const hash = h.digest('hex').slice(0, 16);
  const dir = path.join(opts.cacheDir ?? defaultCacheDir(), 'initramfs');
  const out = path.join(dir, `initrd-${kernel.release}-${hash}.cpio.gz`);
  const modules = order.map((m) => m.name);
  if (fs.existsSync(out)) return { path: out, hash, modules };

  opts.log?.(`vm: building ${out} (${modules.join(' ')})`);
  const entries: CpioEntry[] = [
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox },
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { name: 'lib', mode: S_IFDIR | 0o755 },
    { name: 'lib/modules', mode: S_IFDIR | 0o755 },
    ...files.map((f) => ({ name: `lib/modules/${f.name}.ko`, mode: S_IFREG | 0o644, data: readModule(f.file) })),
    { name: 'modules.list', mode: S_IFREG | 0o644, data: Buffer.from(modules.join('\n') + '\n') },
    { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(INIT_SCRIPT) },
  ];
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, zlib.gzipSync(cpioNewc(entries), { level: 1 }));
  fs.renameSync(tmp, out); // atomic: parallel test processes may build the same file
  return { path: out, hash, modules };
}
