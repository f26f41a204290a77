// Floors for bench/transport: a FUSE server in a Node worker reading and writing /dev/fuse as ours does (the addon's
// loopBind/loopNext, one native call per request; fs.readSync/writeSync when the addon does not load), minus parts.
//   raw:     IOCTL answered in place from one preallocated buffer (result 0, in bytes echoed, rest zero), like the
//            libfuse3 server: the cost of Node + worker + the native loop call alone;
//   session: every request through cuse-dev's Session + serveLoop, over a stub device whose ioctl echoes its input:
//            the transport's own cost without core/ and without a client watcher.
// Other requests (INIT, LOOKUP, GETATTR, OPEN, FLUSH, RELEASE) always go through the Session.
// Usage: node dist/bench/lib/fuse-floor.js raw|session MOUNTDIR  → prints "fuse-floor: serving <file>"; SIGTERM stops.
import * as fs from 'fs';
import * as path from 'path';
import { Worker, isMainThread, workerData } from 'worker_threads';
import * as F from '../../cuse-dev/abi/fuse';
import { FuseOpcode } from '../../cuse-dev/abi/opcodes';
import { Session } from '../../cuse-dev/session/session';
import { fsIO, nativeIO, serveLoop } from '../../cuse-dev/session/loop';
import { FileTree } from '../../cuse-dev/session/tree';
import { callerResolver } from '../../cuse-dev/session/tgid';
import { loadUffd } from '../../uffd/load';
import type { UffdBinding } from '../../uffd/native-types';
import { run } from '../../cuse-dev/transport/mounts';
import type { CoreDevice, CoreFile } from '../../cuse-dev/session/core-api';

export type FloorMode = 'raw' | 'session';
const DEVICE = 'dev';
const BUF = 256 * 1024;

/** A device whose ioctl echoes its input (no core): the session's own cost (also bench/callers). */
export function stubDevice(): CoreDevice {
  const file: CoreFile = { ioctl: (_pid, _cmd, argIn) => ({ result: 0, out: argIn }), close: () => undefined };
  return {
    open: () => file, plan: () => ({ inSize: 0, outSize: 0, in: [], out: [] }), service: () => undefined,
    counts: () => ({}), snapshot: () => ({}), shutdown: () => undefined,
  };
}

const IN_HDR = F.fuse_in_header.size;
const OUT_HDR = F.fuse_out_header.size;
const IOCTL_OUT = F.fuse_ioctl_out.size;
const IN_OPCODE = F.fuse_in_header.offsetOf('opcode');
const IN_UNIQUE = F.fuse_in_header.offsetOf('unique');
const OUT_LEN = F.fuse_out_header.offsetOf('len');
const OUT_UNIQUE = F.fuse_out_header.offsetOf('unique');
const IOCTL_IN_SIZE = IN_HDR + F.fuse_ioctl_in.offsetOf('in_size');
const IOCTL_OUT_SIZE = IN_HDR + F.fuse_ioctl_in.offsetOf('out_size');

function workerMain(fd: number, mode: FloorMode): void {
  // Callers resolved as the server does (thread pidfds when the addon loads), not through /proc per request.
  let u: UffdBinding | undefined;
  try { u = loadUffd(); } catch { /* /proc per request */ }
  const session = new Session({ kind: 'fuse', device: stubDevice(), tree: new FileTree(DEVICE, 0o666), tgid: callerResolver(u).resolver });
  const io = u ? nativeIO(u) : fsIO;
  // quiet: the reply goes out in the same native call as the next read, as in `serve` once INIT is done.
  if (mode === 'session') { serveLoop(fd, session, { quiet: () => session.state === 'ready' }, BUF, fd, io); return; }
  const buf = Buffer.alloc(BUF), dv = new DataView(buf.buffer, buf.byteOffset);
  const out = new Uint8Array(OUT_HDR + IOCTL_OUT + (1 << 14)), odv = new DataView(out.buffer);
  let reply: Uint8Array | null = null;
  for (;;) {
    let n: number;
    try {
      if (reply && io.writeRead) { const r = reply; reply = null; n = io.writeRead(fd, r, buf, -1); }
      else { if (reply) { try { io.write(fd, reply); } catch { /* ENOENT: interrupted */ } reply = null; } n = io.read(fd, buf, -1); }
    } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      if (c === 'EINTR' || c === 'EAGAIN' || c === 'ENOENT') continue;
      return;
    }
    if (dv.getUint32(IN_OPCODE, true) === FuseOpcode.FUSE_IOCTL && session.state === 'ready') {
      const inSize = dv.getUint32(IOCTL_IN_SIZE, true), outSize = Math.min(dv.getUint32(IOCTL_OUT_SIZE, true), 1 << 14);
      const len = OUT_HDR + IOCTL_OUT + outSize;
      odv.setUint32(OUT_LEN, len, true);
      odv.setBigUint64(OUT_UNIQUE, dv.getBigUint64(IN_UNIQUE, true), true);
      const echo = Math.min(inSize, outSize), data = OUT_HDR + IOCTL_OUT;
      out.set(buf.subarray(IN_HDR + F.fuse_ioctl_in.size, IN_HDR + F.fuse_ioctl_in.size + echo), data);
      out.fill(0, data + echo, data + outSize);
      reply = out.subarray(0, len);
    } else {
      reply = session.handle(buf, n);
    }
  }
}

async function main(mode: FloorMode, mnt: string): Promise<void> {
  fs.mkdirSync(mnt, { recursive: true });
  const fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR);
  const m = await run('mount', ['-i', '-t', 'fuse.virtgpu-floor', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other', 'virtgpu-floor', mnt], fd);
  if (m.code !== 0) throw new Error(`mount failed: ${m.stderr}`);
  const w = new Worker(__filename, { workerData: { floor: { fd, mode } } });
  // The worker ends when the mount goes away (read → ENODEV).
  const stop = (): void => { void run('umount', ['-l', mnt]).then(() => setTimeout(() => process.exit(0), 1000).unref()); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  w.on('exit', () => process.exit(0));
  const file = path.join(mnt, DEVICE);
  await fs.promises.stat(file);
  process.stdout.write(`fuse-floor: serving ${file}\n`);
}

if (!isMainThread && (workerData as { floor?: unknown } | null)?.floor) {
  const { fd, mode } = (workerData as { floor: { fd: number; mode: FloorMode } }).floor;
  workerMain(fd, mode);
} else if (isMainThread && require.main === module) {
  const [mode, mnt] = process.argv.slice(2);
  if ((mode !== 'raw' && mode !== 'session') || !mnt) { console.error('usage: fuse-floor raw|session MOUNTDIR'); process.exit(2); }
  main(mode, mnt).catch((e: Error) => { console.error(e.message); process.exit(1); });
}
