// CUSE transport: /dev/cuse, CUSE_INIT answered with DEVNAME=dri/renderD<N> (and CUSE_UNRESTRICTED_IOCTL), so the
// kernel creates a real char device; no mount. Closing the /dev/cuse fd removes the device (at stop with files still
// open: once the last of them is closed, see unplugged.ts).
// Untestable on hosts without CONFIG_CUSE: the protocol logic is the shared Session (tests replay byte vectors);
// the VM harness (tools/vm, driven by tests/vm) runs this file for real.
import * as fs from 'fs';
import { readBufferSize } from '../session/loop';
import { ServeWorker, pokeNode, stopper } from './serve-worker';
import { deviceAxes, DRM_MAJOR, RENDER_MINOR_BASE, RENDER_MINOR_MAX, type RunningServer, type ServeOptions } from './common';
import { run } from './mounts';
import { resolveNodePerms, unreachableFolders } from './node-perms';
import { handOffUnplugged } from './unplugged';

/** Character majors registered right now (the "Character devices:" part of /proc/devices). */
export function charMajors(text: string = safeRead('/proc/devices')): Map<number, string> {
  const out = new Map<number, string>();
  let inChar = false;
  for (const line of text.split('\n')) {
    if (/^Character devices:/.test(line)) { inChar = true; continue; }
    if (/^Block devices:/.test(line)) { inChar = false; continue; }
    const m = inChar ? /^\s*(\d+)\s+(\S.*)$/.exec(line) : null;
    if (m) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

function safeRead(p: string): string { try { return fs.readFileSync(p, 'utf8'); } catch { return ''; } }

export interface DevNumbers { major: number; minor: number; note?: string }

/**
 * Major 226 / minor N when nothing owns 226 (drm.ko not loaded; CUSE then registers the region itself),
 * else 0/0 = dynamic: the kernel would refuse a busy region and abort the connection.
 */
export function chooseDevNumbers(minor: number, majors = charMajors(), exists: (p: string) => boolean = fs.existsSync): DevNumbers {
  const owner = majors.get(DRM_MAJOR);
  if (owner === undefined && !exists(`/sys/dev/char/${DRM_MAJOR}:${minor}`)) return { major: DRM_MAJOR, minor };
  return { major: 0, minor: 0, note: `major ${DRM_MAJOR} is taken by "${owner ?? 'another device'}": dynamic major` };
}

/** First renderD<N> (N ≥ 128) with no node under /dev/dri. */
export function firstFreeMinor(exists: (p: string) => boolean = fs.existsSync): number {
  for (let n = RENDER_MINOR_BASE; n <= RENDER_MINOR_MAX; n++) if (!exists(`/dev/dri/renderD${n}`)) return n;
  throw new Error('no free renderD minor in 128..255');
}

/** /dev/<devname> from a --path (must be under /dev/). */
export function devnameOf(p: string): string {
  if (!p.startsWith('/dev/') || p.length <= 5) throw new Error(`CUSE device path must be under /dev/: ${p}`);
  return p.slice(5);
}

async function sleep(ms: number): Promise<void> { await new Promise((r) => setTimeout(r, ms)); }

/**
 * Wait for devtmpfs to create the node; without devtmpfs/udev create it from sysfs ('/' in the name is '!' there).
 * Returns a note when we had to mknod (the node is then ours to remove).
 */
async function waitForNode(devPath: string, devname: string): Promise<{ created: boolean }> {
  for (let i = 0; i < 100; i++) {
    if (fs.existsSync(devPath)) return { created: false };
    if (i === 50) {
      const sys = `/sys/class/cuse/${devname.replace(/\//g, '!')}/dev`;
      const mm = safeRead(sys).trim();
      if (mm) {
        const [maj, min] = mm.split(':');
        fs.mkdirSync(devPath.slice(0, devPath.lastIndexOf('/')), { recursive: true });
        const r = await run('mknod', [devPath, 'c', maj!, min!]);
        if (r.code === 0) return { created: true };
      }
    }
    await sleep(20);
  }
  throw new Error(`${devPath} did not appear after CUSE_INIT`);
}

export async function startCuse(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? (() => undefined);
  const notes: string[] = [];
  const minor = o.minor ?? (o.path ? RENDER_MINOR_BASE : firstFreeMinor());
  const devPath = o.path ?? `/dev/dri/renderD${minor}`;
  const devname = devnameOf(devPath);
  if (fs.existsSync(devPath)) throw new Error(`${devPath} already exists (a real GPU, another server, or a stopped server's file still held by a client): pick --minor or --path`);
  const nums = chooseDevNumbers(minor);
  if (nums.note) notes.push(nums.note);
  const { uapi, mode } = deviceAxes(o);
  const perms = resolveNodePerms(o);
  const fd = fs.openSync('/dev/cuse', fs.constants.O_RDWR);
  const worker = new ServeWorker(o.workerEntry, {
    fd, kind: 'cuse', cuse: { devname, major: nums.major, minor: nums.minor, unrestricted: o.unrestricted ?? true },
    device: { uapi, mode: o.mode, profile: o.profile, watch: o.watch ?? 'auto', handoff: o.handoff, inject: o.inject, injectUids: o.injectUids, faults: o.faults }, trace: o.trace, controlPid: process.pid,
  }, () => pokeNode(devPath), { log });
  let createdNode = false;
  const stop = stopper(worker, log, {
    release: async (open) => {
      // Closing /dev/cuse aborts the connection and removes the char device (fs/fuse/cuse.c cuse_channel_release);
      // files still open would then get ENOTCONN. They get ENODEV instead (unplugged device): the answerer keeps
      // /dev/cuse open until their last RELEASE, and the node stays until then (new opens: ENODEV).
      const pid = open > 0
        ? handOffUnplugged(fd, readBufferSize(), open, log, { countReleases: true, createdNode: createdNode ? devPath : undefined })
        : undefined;
      try { fs.closeSync(fd); } catch { /* closed */ }
      if (createdNode && pid === undefined) fs.rmSync(devPath, { force: true });
    },
  });
  try {
    const st = await worker.started;
    notes.push(...st.reasons);
    const init = await worker.inited;
    if ((o.unrestricted ?? true) && !init.flags) notes.push('kernel did not grant CUSE_UNRESTRICTED_IOCTL: restricted ioctls');
    createdNode = (await waitForNode(devPath, devname)).created;
    // devtmpfs creates CUSE nodes 0600 root:root (no udev rules for them): apply --owner/--group/--mode-bits
    // ourselves; chown first, as it clears set-id bits.
    fs.chownSync(devPath, perms.uid, perms.gid);
    fs.chmodSync(devPath, perms.mode);
    const closed = unreachableFolders(devPath, perms);
    if (closed.length) notes.push(`the node's mode lets other users in, but they cannot search ${closed.join(', ')}: only root (and those folders' owners) can reach it`);
    return {
      transport: 'cuse', path: devPath, watcher: st.watcher, uapi, mode, notes, perms,
      snapshot: () => worker.counts(),
      stop,
      stuck: () => !worker.hasExited,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
