// After a stop, the files clients still hold behave as on an unplugged DRM device (drm_dev_unplug): every call
// answers ENODEV and close() succeeds. Closing /dev/fuse instead would abort the connection, and FUSE then answers
// every later call with ENOTCONN. So a stopping server whose clients still hold files detaches its mounts lazily (no
// new opens) and hands its /dev/fuse fd (as fd 3) to this small detached process, which answers until the kernel
// destroys the detached mount at the last close (read: ENODEV) and then exits.
import * as fs from 'fs';
import { spawn } from 'child_process';
import { fuse_in_header, FUSE_MIN_READ_BUFFER } from '../abi/fuse';
import { FuseOpcode, opcodeRow } from '../abi/opcodes';
import { ENODEV } from '../session/errnos';
import { replyError, replyOk } from '../session/reply';

const IN_OPCODE = fuse_in_header.offsetOf('opcode');
const IN_UNIQUE = fuse_in_header.offsetOf('unique');
const CHILD_FD = 3;

/** The reply to one request on an unplugged device: close paths succeed, no-reply opcodes get none, the rest ENODEV. */
export function unpluggedReply(req: Uint8Array): Uint8Array | null {
  if (req.length < fuse_in_header.size) return null;
  const dv = new DataView(req.buffer, req.byteOffset, req.byteLength);
  const op = dv.getUint32(IN_OPCODE, true);
  const unique = dv.getBigUint64(IN_UNIQUE, true);
  if (opcodeRow(op)?.noReply) return null;
  if (op === FuseOpcode.FUSE_FLUSH || op === FuseOpcode.FUSE_RELEASE || op === FuseOpcode.FUSE_RELEASEDIR) return replyOk(unique);
  return replyError(unique, ENODEV);
}

/** The answering loop (in the detached process): returns when the connection is gone. */
export function serveUnplugged(fd: number, bufferSize: number): void {
  const buf = Buffer.allocUnsafe(Math.max(bufferSize, FUSE_MIN_READ_BUFFER));
  for (;;) {
    let n: number;
    try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      if (c === 'EINTR' || c === 'EAGAIN' || c === 'ENOENT') continue;
      return; // ENODEV: the last file was closed and the detached mount destroyed (or the connection aborted)
    }
    if (n === 0) return;
    const reply = unpluggedReply(buf.subarray(0, n));
    if (!reply) continue;
    try { fs.writeSync(fd, reply); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENODEV') return; /* ENOENT: interrupted */ }
  }
}

/**
 * Hand `fd` (/dev/fuse, mounts already detached) to a detached answering process; the caller then closes its own
 * copy. Returns its pid, or undefined when it could not be started (the caller's close then aborts the connection:
 * ENOTCONN).
 */
export function handOffUnplugged(fd: number, bufferSize: number): number | undefined {
  try {
    const p = spawn(process.execPath, [__filename, String(bufferSize)], { detached: true, stdio: ['ignore', 'ignore', 'ignore', fd] });
    p.on('error', () => undefined);
    p.unref();
    return p.pid;
  } catch {
    return undefined;
  }
}

if (require.main === module) serveUnplugged(CHILD_FD, Number(process.argv[2]) || FUSE_MIN_READ_BUFFER);
