// The server at its own fd limit (RLIMIT_NOFILE, set low with prlimit around `serve`): unmodified libdrm clients
// (tests/c/async_unmap -w, not preloaded) keep opening the node and creating a userptr while all the earlier ones hold
// theirs. Near the limit the server stops keeping an fd per client (no injected userfaultfd, no pidfd: those clients
// are watched through /proc, announced once); at the limit itself a client gets the errno a driver gives — ENFILE
// from open, ENOMEM from the create — never EIO, and the server keeps serving: once the clients are gone a new one
// opens, creates and unmaps. Bounded: 40 short-lived C clients, every wait with a deadline.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { killServe, startServe } from '../helpers/serve-process';

const ASYNC_UNMAP = path.resolve(__dirname, '../../../tests/c/bin/async_unmap');
const LIMIT = 64;
const CLIENTS = 40;
const fuse = probeFuse();
const prlimit = spawnSync('prlimit', ['--version']).status === 0;
const skip = !fuse.ok ? fuse.reason : !prlimit ? 'prlimit (util-linux) not found' : !fs.existsSync(ASYNC_UNMAP) ? 'tests/c/bin/async_unmap not built' : '';
const maybe = skip ? test.serial.skip : test.serial;

interface Client { p: ChildProcess; out: string; err: string; done: Promise<void> }
function client(node: string): Client {
  const p = spawn(ASYNC_UNMAP, ['-w', node], { stdio: ['pipe', 'pipe', 'pipe'] });
  const c: Client = { p, out: '', err: '', done: Promise.resolve() };
  p.stdout!.on('data', (d: Buffer) => { c.out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { c.err += d.toString(); });
  p.stdin!.on('error', () => undefined);
  c.done = new Promise((r) => p.on('exit', () => r()));
  return c;
}
/** Settled: the client registered its BO (and waits), or exited with its reason. */
const settled = (c: Client): boolean => /^bo \d+ \d+$/m.test(c.out) || c.p.exitCode !== null;
async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) { if (Date.now() > end) return false; await new Promise((r) => setTimeout(r, 20)); }
  return true;
}

maybe(`at its fd limit the server answers ENFILE/ENOMEM (never EIO), watches new clients through /proc, and keeps serving${skip ? ` (skipped: ${skip})` : ''}`, async (t) => {
  t.timeout(110_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-fdlimit-'));
  const s = startServe(['--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt')], { wrap: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`] });
  const clients: Client[] = [];
  try {
    const node = await s.ready;
    for (let i = 0; i < CLIENTS; i++) {
      const c = client(node);
      clients.push(c);
      t.true(await until(() => settled(c), 15_000), `client ${i} neither created nor failed in time: ${c.err}`);
    }
    const outcome = (c: Client): string => {
      if (/^bo /m.test(c.out)) return 'bo';
      if (/Too many open files in system/.test(c.err)) return 'open:ENFILE';
      const m = /create: (\w+)/.exec(c.err);
      return m ? `create:${m[1]}` : `other: ${c.err.trim()}`;
    };
    const counts: Record<string, number> = {};
    for (const c of clients) { const o = outcome(c); counts[o] = (counts[o] ?? 0) + 1; }
    t.log(`outcomes of ${CLIENTS} clients holding their files at RLIMIT_NOFILE=${LIMIT}: ${JSON.stringify(counts)}`);
    for (const o of Object.keys(counts)) t.true(['bo', 'open:ENFILE', 'create:ENOMEM'].includes(o), `unexpected outcome ${o}`);
    t.true((counts.bo ?? 0) > 0, 'clients were served before the limit');
    t.true((counts['open:ENFILE'] ?? 0) + (counts['create:ENOMEM'] ?? 0) > 0, 'the limit was reached');
    const err = s.stderr();
    t.notRegex(err, /BUG|EIO/, 'resource exhaustion is never an internal error');
    t.is(err.match(/fds left below the limit: new clients get no userfaultfd/g)?.length, 1, 'the /proc fallback is announced once');

    // The held clients munmap (watched through the userfaultfd injected before the limit, or /proc) and go.
    for (const c of clients) { c.p.stdin!.write('\n'); c.p.stdin!.end(); }
    await Promise.race([Promise.all(clients.map((c) => c.done)), new Promise((r) => setTimeout(r, 20_000))]);
    for (const c of clients) t.not(c.p.exitCode, null, 'every client exited');
    // Still serving, with fds again: a new client opens, creates and unmaps.
    const fresh = client(node);
    clients.push(fresh);
    t.true(await until(() => settled(fresh), 15_000));
    t.regex(fresh.out, /^bo \d+ \d+$/m, fresh.err);
    fresh.p.stdin!.end('\n');
    await fresh.done;
    t.is(fresh.p.exitCode, 0, fresh.err);
    const r = await killServe(s, 'SIGTERM', 20_000);
    t.is(r.code, 0, s.stderr());
    t.regex(s.stdout(), new RegExp(`stopped \\(stop\\): clients=${(counts.bo ?? 0) + (counts['create:ENOMEM'] ?? 0) + 1} `));
  } finally {
    for (const c of clients) if (c.p.exitCode === null) c.p.kill('SIGKILL');
    await killServe(s, 'SIGKILL', 5000);
    spawnSync('umount', ['-l', '-c', path.join(dir, 'mnt')]); // a server killed here leaves its mount dead
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
