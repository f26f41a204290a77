// The mount table as this program sees it: which FUSE mounts are its own (fstype fuse.virtgpu-emu), and start-up
// recovery of the ones a killed server left behind. A server that dies without unmounting (SIGKILL) leaves its mount
// in place with no one reading /dev/fuse: every access to the path fails with ENOTCONN, including the next
// server's mkdir/mount there. Only such a mount, of our type, and dead, is detached; anything else is left alone.
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';

/** The FUSE subtype and source (fsname) this program mounts with: how it recognises its own mounts. */
export const FUSE_SUBTYPE = 'virtgpu-emu';
export const FUSE_FSTYPE = `fuse.${FUSE_SUBTYPE}`;

/** How long a live server may take to answer the liveness probe before it counts as hung (not dead). */
const PROBE_TIMEOUT_MS = 5000;
/** Mounts stacked at one path that a recovery detaches at most (each SIGKILLed server left one). */
const MAX_STACKED = 16;

/** Run a command to completion; resolves with its exit code and stderr. */
export function run(cmd: string, args: string[], extraFd?: number): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'ignore', 'pipe'];
    if (extraFd !== undefined) stdio.push(extraFd);
    const p = spawn(cmd, args, { stdio });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', (e) => resolve({ code: 127, stderr: e.message }));
    p.on('close', (code) => resolve({ code: code ?? 128, stderr: err.trim() }));
  });
}

export interface MountEntry {
  /** Anonymous device "major:minor" (for FUSE, the minor is fusectl's connection id). */
  dev: string;
  mountPoint: string;
  fstype: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** /proc/self/mountinfo in mount order (the last entry at a path is the one on top). */
export function readMountInfo(text = fs.readFileSync('/proc/self/mountinfo', 'utf8')): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) continue;
    out.push({ dev: f[2]!, mountPoint: unescape(f[4]!), fstype: f[sep + 1]!, source: unescape(f[sep + 2] ?? '') });
  }
  return out;
}

/** The mount on top at `mountPoint` (an absolute, canonical path), if any. */
export function topMount(mountPoint: string, table = readMountInfo()): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const m of table) if (m.mountPoint === mountPoint) top = m;
  return top;
}

/**
 * `p` as the mount table spells it: the parent resolved (symlinks), the last component kept — resolving `p` itself
 * would stat the mount on it, which fails (dead) or blocks (hung server).
 */
export function canonicalMountPath(p: string): string {
  const abs = path.resolve(p);
  const dir = path.dirname(abs);
  try { return path.join(fs.realpathSync(dir), path.basename(abs)); } catch { return abs; }
}

export type Liveness = 'dead' | 'alive' | 'hung';

/**
 * Ask the server behind a FUSE mount: statfs always goes to the server (no cache); a dead connection answers
 * ENOTCONN at once, a live one its reply (ours: ENOSYS), a stopped or blocked one nothing (then 'hung'). The call
 * runs in a child process (stat -f, C locale: the errno's text is stable): a statfs waiting on a stopped server cannot
 * be abandoned in this one (it would keep the process from exiting), while the child can be killed.
 */
export function probeFuseMount(p: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Liveness> {
  return new Promise((resolve) => {
    const c = spawn('stat', ['-f', '-c', '%T', '--', p], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => { c.kill('SIGKILL'); resolve('hung'); }, timeoutMs);
    c.on('error', () => { clearTimeout(timer); resolve('hung'); });
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve(status !== 0 && /Transport endpoint is not connected/.test(err) ? 'dead' : status === null ? 'hung' : 'alive');
    });
  });
}

export class MountInUseError extends Error {}

/**
 * Make `p` usable for a new server: while the mount on top at `p` is one of ours whose server is gone, detach it
 * (umount2(MNT_DETACH) through umount -l; -c: no canonicalisation, which would stat the dead mount). A mount of
 * ours that still answers (another server) or hangs refuses the start with MountInUseError; any other mount, or
 * none, is left as it is. Returns the detached mounts' descriptions (for a log line).
 */
export async function recoverDeadMount(p: string, what: string): Promise<string[]> {
  const at = canonicalMountPath(p);
  const detached: string[] = [];
  for (let i = 0; i < MAX_STACKED; i++) {
    const m = topMount(at);
    if (!m || m.fstype !== FUSE_FSTYPE) break;
    const state = await probeFuseMount(at);
    if (state === 'alive') throw new MountInUseError(`${what} ${at} is served by another running virtgpu-emu: stop it first, or choose another path`);
    if (state === 'hung') throw new MountInUseError(`${what} ${at} is a virtgpu-emu mount whose server does not answer (stopped?): resume or kill it first`);
    const u = await run('umount', ['-l', '-c', at]);
    if (u.code !== 0) throw new Error(`cannot detach the dead virtgpu-emu mount at ${at}: ${u.stderr}`);
    detached.push(`${what} ${at} (connection ${m.dev})`);
  }
  return detached;
}

/** kill(pid, 0): true unless no such process (a name that is not a pid counts as gone). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Detach the dead mounts of ours directly under `parent` (the default mount dirs <parent>/<pid> of killed servers,
 * which no later start asks for by name) and remove their empty directories. Those whose pid still runs, and live or
 * hung ones, are left alone.
 */
export async function sweepDeadMounts(parent: string): Promise<string[]> {
  const base = canonicalMountPath(parent);
  const swept: string[] = [];
  const seen = new Set<string>();
  for (const m of readMountInfo()) {
    if (m.fstype !== FUSE_FSTYPE || path.dirname(m.mountPoint) !== base || seen.has(m.mountPoint)) continue;
    seen.add(m.mountPoint);
    if (processAlive(Number(path.basename(m.mountPoint)))) continue; // its server (probably) still runs: no probe
    try { swept.push(...await recoverDeadMount(m.mountPoint, 'mount dir')); } catch { continue; /* live or hung: not ours to touch */ }
    if (!topMount(m.mountPoint)) { try { fs.rmdirSync(m.mountPoint); } catch { /* not empty or in use: leave it */ } }
  }
  return swept;
}
