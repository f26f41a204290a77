// After a stop, the files clients still hold behave as on an unplugged DRM device (drm_dev_unplug): every call
// answers ENODEV and close() succeeds. Closing /dev/fuse or /dev/cuse instead would abort the connection, and the
// kernel then answers every later call with ENOTCONN. So a stopping server whose clients still hold files hands its
// fd (as fd 3) to this small detached process, which answers until the last of those files is closed, then exits.
// - FUSE: the mounts are detached lazily first (no new opens); the kernel destroys the detached mount at the last
//   close and the answerer's read fails with ENODEV.
// - CUSE: the connection (and the char device) lives as long as /dev/cuse is open, whatever the clients do, so the
//   answerer is told how many files are open, refuses new opens (FUSE_OPEN: ENODEV, no file is made), counts the
//   RELEASEs and exits at the last one; its exit closes /dev/cuse, which removes the char device.
import * as fs from 'fs';
import { spawn } from 'child_process';
import { fuse_in_header, FUSE_MIN_READ_BUFFER } from '../abi/fuse';
import { FuseOpcode, opcodeRow } from '../abi/opcodes';
import { ENODEV } from '../../core/errno';
import { replyError, replyOk } from '../session/reply';

const IN_OPCODE = fuse_in_header.offsetOf('opcode');
const IN_UNIQUE = fuse_in_header.offsetOf('unique');
const CHILD_FD = 3;

function opcodeOf(req: Uint8Array): number | undefined {
  if (req.length < fuse_in_header.size) return undefined;
  return new DataView(req.buffer, req.byteOffset, req.byteLength).getUint32(IN_OPCODE, true);
}

/** The reply to one request on an unplugged device: close paths succeed, no-reply opcodes get none, the rest ENODEV. */
export function unpluggedReply(req: Uint8Array): Uint8Array | null {
  const op = opcodeOf(req);
  if (op === undefined) return null;
  const unique = new DataView(req.buffer, req.byteOffset, req.byteLength).getBigUint64(IN_UNIQUE, true);
  if (opcodeRow(op)?.noReply) return null;
  if (op === FuseOpcode.FUSE_FLUSH || op === FuseOpcode.FUSE_RELEASE || op === FuseOpcode.FUSE_RELEASEDIR) return replyOk(unique);
  return replyError(unique, ENODEV);
}

/** CUSE: how many of `open` files are still open once `req` is answered (a RELEASE ends one; opens are refused). */
export function openAfter(req: Uint8Array, open: number): number {
  return opcodeOf(req) === FuseOpcode.FUSE_RELEASE ? open - 1 : open;
}

/**
 * The answering loop (in the detached process): returns when the connection is gone or, given `openFiles` (CUSE),
 * once that many files were released.
 */
export function serveUnplugged(fd: number, bufferSize: number, openFiles?: number): void {
  const buf = Buffer.allocUnsafe(Math.max(bufferSize, FUSE_MIN_READ_BUFFER));
  let open = openFiles;
  while (open === undefined || open > 0) {
    let n: number;
    try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      if (c === 'EINTR' || c === 'EAGAIN' || c === 'ENOENT') continue;
      return; // ENODEV: the last file was closed and the detached mount destroyed (or the connection aborted)
    }
    if (n === 0) return;
    const req = buf.subarray(0, n);
    const reply = unpluggedReply(req);
    if (reply) {
      try { fs.writeSync(fd, reply); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENODEV') return; /* ENOENT: interrupted */ }
    }
    if (open !== undefined) open = openAfter(req, open);
  }
}

export interface UnplugOptions {
  /** CUSE (the connection outlives its files): exit after as many RELEASEs as files were open. */
  countReleases?: boolean;
  /** CUSE: a node the server made itself with mknod (no devtmpfs), removed at the exit as the kernel removes its own. */
  createdNode?: string;
}

/**
 * Hand `fd` (/dev/fuse with its mounts already detached, or /dev/cuse) to a detached process answering the
 * `openFiles` (> 0) files still open; the caller then closes its own copy. Returns its pid, or undefined when it
 * could not be started (the caller's close then aborts the connection: ENOTCONN).
 */
export function handOffUnplugged(fd: number, bufferSize: number, openFiles: number, log: (msg: string) => void, o: UnplugOptions = {}): number | undefined {
  let pid: number | undefined;
  try {
    const args = [__filename, String(bufferSize), ...(o.countReleases ? [String(openFiles), ...(o.createdNode ? [o.createdNode] : [])] : [])];
    const p = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', 'ignore', fd] });
    p.on('error', () => undefined);
    p.unref();
    pid = p.pid;
  } catch { /* logged below */ }
  log(pid !== undefined ? `${openFiles} file(s) still open answer ENODEV until closed (unplugged device; answerer pid ${pid})`
    : 'could not start the unplugged-device answerer: files still open get ENOTCONN');
  return pid;
}

if (require.main === module) {
  const [, , size, open, node] = process.argv;
  serveUnplugged(CHILD_FD, Number(size) || FUSE_MIN_READ_BUFFER, open !== undefined ? Number(open) : undefined);
  if (node) { try { fs.closeSync(CHILD_FD); fs.rmSync(node, { force: true }); } catch { /* already gone */ } }
}
