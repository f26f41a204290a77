// Stress, bounded in time: several C client processes × threads of random userptr traffic against one served FUSE
// node (tests/c/storm.c: create / dedup / munmap / madvise / mmap over / GEM_CLOSE, each thread on its own file and
// memory, checking every result against its own model of the kernel's answers), then every count back to zero; and
// one client at the limits (tests/c/limits.c: many files, many clients, many userptrs, the sizes the kernel refuses,
// each errno asserted by the client). The server is the CLI's (`startServer`: the preload handoff, as `serve`).
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { startServer } from '../../cli/serve';
import type { RunningServer } from '../../cuse-dev/transport/common';
import { allZero, collect, parseTap, tail, until, type CountsLike, type Done } from '../helpers/clients';

const BIN = path.resolve(__dirname, '../../../tests/c/bin');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

const PROCS = 8;
const THREADS = 4;
const STORM_SECONDS = 8;

async function withServer(t: ExecutionContext, body: (s: RunningServer) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-stress-'));
  const s = await startServer({ transport: 'fuse', mountDir: path.join(dir, 'mnt'), mode: 'notifier' });
  t.log(`serving ${s.path} (watcher=${s.watcher}); clients hand over their userfaultfd: ${s.clientEnv ? 'yes' : 'no'}`);
  try {
    await body(s);
    const c = await until('every count at zero once all clients exited', async () => (await s.snapshot()).counts as CountsLike, allZero).catch((e: Error) => e);
    if (c instanceof Error) t.fail(c.message);
  } finally {
    const sum = await s.stop();
    t.log(`server summary: clients=${sum.clients} ioctls=${sum.ioctls} opens=${sum.opens} releases=${sum.releases} created=${sum.userptrsCreated} ` +
      `deduped=${sum.userptrsDeduped} split=${sum.userptrsSplit} evicted=${sum.userptrsEvicted} unmapped=${sum.userptrsUnmapped}`);
    t.is(sum.openAtStop, 0, 'no file left open when the server stopped');
    t.is(sum.opens, sum.releases, 'every open file was released');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function client(s: RunningServer, bin: string, args: string[], timeoutMs: number): Promise<Done> {
  return collect(spawn(path.join(BIN, bin), args, {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv, VIRTGPU_EMU_DEVICE: s.path, VIRTGPU_EMU_MODE: 'notifier' },
  }), timeoutMs);
}

/** Every result line of a client ok, and it exited 0. */
function passed(t: ExecutionContext, who: string, r: Done, lines: number): void {
  const tap = [...parseTap(r.stdout).values()];
  const bad = tap.filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
  t.deepEqual(bad, [], `${who}: failed checks`);
  t.is(tap.length, lines, `${who}: one result line per check\n${tail(r.stdout)}\n${tail(r.stderr, 5)}`);
  t.is(r.code, 0, `${who}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n${tail(r.stderr, 5)}`);
}

maybe(`storm: ${PROCS} processes × ${THREADS} threads of random userptr traffic, each thread's model holds, counts back to zero${skipWhy}`, async (t) => {
  t.timeout(60_000);
  await withServer(t, async (s) => {
    const runs = await Promise.all(Array.from({ length: PROCS }, () => client(s, 'storm', ['-t', String(THREADS), '-s', String(STORM_SECONDS)], 40_000)));
    runs.forEach((r, i) => {
      passed(t, `storm process ${i}`, r, 1);
      t.log(parseTap(r.stdout).get('storm')?.detail ?? '(no result line)');
    });
  });
});

maybe(`limits: the sizes the kernel refuses answer its errnos (ENOMEM for kvmalloc sizes, EINVAL, EFAULT)${skipWhy}`, async (t) => {
  t.timeout(60_000);
  await withServer(t, async (s) => passed(t, 'limits big', await client(s, 'limits', ['big'], 30_000), 11));
});

maybe(`limits: 500 files open in one client, 32 clients of 16 files at once; the client's own RLIMIT_NOFILE gives EMFILE${skipWhy}`, async (t) => {
  t.timeout(60_000);
  await withServer(t, async (s) => {
    passed(t, 'limits files 500', await client(s, 'limits', ['files', '500'], 40_000), 3);
    const many = await Promise.all(Array.from({ length: 32 }, () => client(s, 'limits', ['files', '16'], 40_000)));
    many.forEach((r, i) => passed(t, `client ${i}`, r, 3));
  });
});

maybe(`limits: 400 userptrs in one client, each its own VMA: created, deduped, all deleted by one munmap${skipWhy}`, async (t) => {
  t.timeout(60_000);
  await withServer(t, async (s) => passed(t, 'limits userptrs 400', await client(s, 'limits', ['userptrs', '400'], 50_000), 3));
});
