// Running programs as another (unprivileged) user from a test that runs as root: the security tests' attackers and
// the permission checks. A clean clone usually lives in a `mktemp -d` folder (mode 0700) where such a user cannot
// open anything, so whatever it runs or loads (a C client, the preload library) is first copied into a 0755 folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import { collect, type Done } from './clients';

export interface User { name: string; uid: number; gid: number }

/** uid/gid of a user name from the passwd database; null when it does not exist. */
export function lookupUser(name: string): User | null {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'latin1' }).trim();
    const f = line.split(':');
    return { name, uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return null;
  }
}

/** The unprivileged `nobody` (uid 65534 on Debian), or null on a host without it. */
export function nobody(): User | null { return lookupUser('nobody'); }

/** Why tests that switch users cannot run here, or null when they can (root, and setpriv and `nobody` exist). */
export function cannotSwitchUsers(): string | null {
  if (process.getuid?.() !== 0) return 'switching to another user needs root';
  if (!nobody()) return 'no `nobody` user on this host';
  try { execFileSync('setpriv', ['--version'], { stdio: 'ignore' }); } catch { return 'setpriv (util-linux) is not installed'; }
  return null;
}

export interface Stage {
  /** The 0755 folder. */
  readonly dir: string;
  /** Path of a staged file by its base name. */
  at(name: string): string;
  /** Remove the folder and everything staged in it. */
  remove(): void;
}

/** Copy `files` (keeping their base names and execute bits, made world-readable) into a new 0755 folder in the system's temporary directory. */
export function stage(files: string[]): Stage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-stage-'));
  fs.chmodSync(dir, 0o755);
  for (const f of files) {
    const to = path.join(dir, path.basename(f));
    fs.copyFileSync(f, to);
    fs.chmodSync(to, (fs.statSync(f).mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
  return {
    dir,
    at: (name) => path.join(dir, name),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface AsUserOptions {
  /** The whole environment of the child (default: PATH only — nothing of the test's environment leaks in). */
  env?: Record<string, string>;
  /** Primary group (default the user's own); supplementary groups are always cleared, but for `groups`. */
  gid?: number;
  groups?: number[];
  cwd?: string;
}

/** argv that runs `file args` as `user` through setpriv (real and effective ids, no supplementary groups). */
export function asUserArgv(user: User, file: string, args: string[], opts: AsUserOptions = {}): string[] {
  const ids = [`--reuid=${user.uid}`, `--regid=${opts.gid ?? user.gid}`];
  const groups = opts.groups?.length ? [`--groups=${opts.groups.join(',')}`] : ['--clear-groups'];
  return ['setpriv', ...ids, ...groups, '--', file, ...args];
}

/** Start `file args` as `user` (stdio piped). */
export function spawnAs(user: User, file: string, args: string[], opts: AsUserOptions = {}): ChildProcess {
  const argv = asUserArgv(user, file, args, opts);
  return spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    cwd: opts.cwd ?? '/',
  });
}

/** Run `file args` as `user` to completion (SIGKILLed after timeoutMs). */
export function runAs(user: User, file: string, args: string[], opts: AsUserOptions & { timeoutMs?: number } = {}): Promise<Done> {
  return collect(spawnAs(user, file, args, opts), opts.timeoutMs ?? 20_000);
}
