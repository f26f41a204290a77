// FUSE transport: /dev/fuse + mount(8) with the fd inherited as fd 3 (no libfuse, no fusermount), serving a
// tree <mountDir>/dri/renderD<N> whose file takes ioctls in restricted mode (the kernel copies _IOC_SIZE bytes).
// The file is S_IFREG, not a char device: returning S_IFCHR would send open() to the real chrdev (ENXIO).
import * as fs from 'fs';
import * as path from 'path';
import { readBufferSize } from '../session/loop';
import { ServeWorker, pokeNode, stopper } from './serve-worker';
import { deviceAxes, RENDER_MINOR_BASE, type RunningServer, type ServeOptions } from './common';
import { resolveNodePerms, unreachableFolders } from './node-perms';
import { handOffUnplugged } from './unplugged';
import { FUSE_FSTYPE, FUSE_SUBTYPE, canonicalMountPath, recoverDeadMount, run, sweepDeadMounts, topMount } from './mounts';

/** max_write announced at INIT; read buffers hold one such request plus its headers. */
const FUSE_MAX_WRITE = 128 * 1024;

export function defaultMountDir(): string { return `/run/virtgpu-emu/${process.pid}`; }

/**
 * fusectl's connection id of a FUSE mount = the minor of its anonymous device, read from /proc/self/mountinfo
 * (a stat of the mount would itself wait for the server).
 */
export function fuseConnectionId(mountDir: string): number {
  const m = topMount(canonicalMountPath(mountDir));
  return m ? Number(m.dev.split(':')[1]) : -1;
}

const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Abort a FUSE connection through fusectl (mounting it for the moment if needed): pending and future requests fail
 * with ENOTCONN and the server's blocked read returns ENODEV. The only way to wake a loop whose clients keep the mount busy.
 */
export async function abortFuseConnection(id: number): Promise<boolean> {
  let mountedCtl = false;
  if (!fs.existsSync(`${FUSECTL}/${id}`)) {
    const m = await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL]);
    mountedCtl = m.code === 0;
  }
  let ok = false;
  try { fs.writeFileSync(`${FUSECTL}/${id}/abort`, '1'); ok = true; } catch { /* connection already gone */ }
  if (mountedCtl) await run('umount', [FUSECTL]);
  return ok;
}

async function waitFor(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function startFuse(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? (() => undefined);
  const minor = o.minor ?? RENDER_MINOR_BASE;
  const rel = `dri/renderD${minor}`;
  const mountDir = o.mountDir ?? defaultMountDir();
  const { uapi, mode } = deviceAxes(o);
  const notes: string[] = [];
  const perms = resolveNodePerms(o);
  // A server killed before it could unmount left its mounts behind (ENOTCONN on every access): detach ours.
  const bindAt = o.bind || o.path ? o.path ?? `/dev/${rel}` : undefined;
  for (const [p, what] of [[mountDir, 'mount dir'], ...(bindAt ? [[bindAt, 'bind target']] : [])] as const) {
    for (const d of await recoverDeadMount(p, what)) log(`detached the dead mount of a killed server: ${d}`);
  }
  for (const d of await sweepDeadMounts(path.dirname(defaultMountDir()))) log(`detached the dead mount of a killed server: ${d}`);
  const fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR);
  let createdMountDir = false;
  let mounted = false;
  try {
    if (!fs.existsSync(mountDir)) {
      // Every folder created on the way is root's 0755 whatever the umask: users reach the node, and nothing more.
      const first = fs.mkdirSync(mountDir, { recursive: true, mode: 0o755 });
      createdMountDir = true;
      if (first) for (let d = path.resolve(mountDir); d.length >= path.resolve(first).length; d = path.dirname(d)) fs.chmodSync(d, 0o755);
    }
    // Reading /dev/fuse before the mount is attached fails with EPERM: start the loop only after mount(8) exits.
    // fstype fuse.virtgpu-emu, source virtgpu-emu: how a later start recognises this mount as ours (mounts.ts).
    const m = await run('mount', ['-i', '-t', FUSE_FSTYPE, '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions', FUSE_SUBTYPE, mountDir], fd);
    if (m.code !== 0) throw new Error(`mount -t ${FUSE_FSTYPE} ${mountDir} failed (${m.code}): ${m.stderr}`);
    mounted = true;
  } catch (e) {
    fs.closeSync(fd);
    if (createdMountDir) fs.rmSync(mountDir, { recursive: true, force: true });
    throw e;
  }
  const served = path.join(mountDir, rel);
  let connId = -1;
  try { connId = fuseConnectionId(mountDir); } catch { /* stat of a mount not yet answering: abort unavailable */ }
  const bufferSize = readBufferSize(FUSE_MAX_WRITE);
  const worker = new ServeWorker(o.workerEntry, {
    fd, kind: 'fuse', maxWrite: FUSE_MAX_WRITE, tree: { devicePath: rel, modeBits: perms.mode, uid: perms.uid, gid: perms.gid },
    device: { uapi, mode: o.mode, profile: o.profile, watch: o.watch ?? 'auto', handoff: o.handoff, inject: o.inject, injectUids: o.injectUids, faults: o.faults }, trace: o.trace, controlPid: process.pid,
  }, () => pokeNode(served), { log });

  let bindTarget: string | undefined;
  let createdTarget = false;
  let createdTargetDir: string | undefined;

  /** `openFiles` > 0: files are still open; they keep answering ENODEV (unplugged.ts) instead of the aborted connection's ENOTCONN. */
  const teardown = async (openFiles = 0): Promise<void> => {
    if (bindTarget) {
      await run('umount', ['-l', bindTarget]);
      if (createdTarget) fs.rmSync(bindTarget, { force: true });
      if (createdTargetDir) fs.rmSync(createdTargetDir, { recursive: true, force: true });
      bindTarget = undefined;
    }
    if (mounted) {
      // Lazy: a client still holding the file keeps the (detached) mount alive; closing /dev/fuse aborts it anyway.
      const u = await run('umount', ['-l', mountDir]);
      if (u.code !== 0) log(`umount -l ${mountDir}: ${u.stderr}`);
      mounted = false;
    }
    if (openFiles > 0) handOffUnplugged(fd, bufferSize, openFiles, log);
    try { fs.closeSync(fd); } catch { /* already closed */ }
    if (createdMountDir) { try { fs.rmSync(mountDir, { recursive: true, force: true }); } catch { /* busy: leave it */ } }
  };

  const stop = stopper(worker, log, {
    abort: { what: 'aborting the FUSE connection', run: async () => { if (connId >= 0) await abortFuseConnection(connId); await teardown(); } },
    release: teardown,
  });

  try {
    const st = await worker.started;
    notes.push(...st.reasons);
    // The first stat goes through INIT + LOOKUPs served by the worker: the node is usable once it answers.
    const ok = await waitFor(async () => { try { await fs.promises.stat(served); return true; } catch { return false; } }, 5000);
    if (!ok) throw new Error(`${served} did not appear`);
    if (o.bind || o.path) {
      const target = bindAt!;
      const dir = path.dirname(target);
      if (!fs.existsSync(dir)) { fs.mkdirSync(dir, { recursive: true }); createdTargetDir = dir; }
      if (!fs.existsSync(target)) { fs.writeFileSync(target, ''); createdTarget = true; }
      const b = await run('mount', ['--bind', served, target]);
      if (b.code !== 0) {
        if (createdTarget) fs.rmSync(target, { force: true });
        throw new Error(`mount --bind ${served} ${target} failed: ${b.stderr}`);
      }
      bindTarget = target;
    }
    const closed = unreachableFolders(bindTarget ?? mountDir, perms);
    if (closed.length) notes.push(`the node's mode lets other users in, but they cannot search ${closed.join(', ')}: only root (and those folders' owners) can reach it`);
    return {
      transport: 'fuse', path: bindTarget ?? served, watcher: st.watcher, uapi, mode, notes, perms,
      snapshot: () => worker.counts(),
      stop,
      stuck: () => !worker.hasExited,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
