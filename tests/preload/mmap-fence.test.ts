// Blob mmap and fence fds over --transport preload, end to end with a real C client on the system's libdrm
// (tests/c/preload_mmap_fence.c): a HOST3D MAPPABLE blob mapped twice (once MAP_FIXED over a reservation), the bytes
// written by the client read back from the server's snapshot, BO close + munmap release the memory; FENCE_FD_OUT
// fds libdrm's sync_wait returns from (at once, and with a host that completes 1.5 s later: not readable before);
// FENCE_FD_IN waits; `--fault fence:nth=1:delay=MS`: the first fence fd is not readable until then, nor is the next
// one of the same context (the C client's submissions go to the HSAKMT host behind the context router), and the
// trace has the fault record. Every count, blob memory and fences included, back to zero.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import type { RunningServer } from '../../cuse-dev/transport/common';
import { allZero, collect, parseTap, tail, type CountsLike } from '../helpers/clients';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from '../../cli/preload-worker-main';
import { findPreload } from '../../uffd';
import type { Snapshot } from '../../core';
import { readTrace } from '../../cuse-dev/trace/reader';

const ROOT = path.resolve(__dirname, '../../..');
const PROG = path.join(ROOT, 'tests/c/bin/preload_mmap_fence');
const maybe = findPreload() && fs.existsSync(PROG) ? test.serial : test.serial.skip;
/** The delaying host's completion time: long against a client's poll right after its ioctl returned. */
const DELAY_MS = 1500;

async function withServer(fenceDelayMs: number, body: (s: RunningServer) => Promise<void>, more: { faults?: string[]; trace?: string } = {}): Promise<{ openAtStop: number; logs: string[] }> {
  const logs: string[] = [];
  const s = await startTransport('preload', { workerEntry: SERVE_WORKER_ENTRY, preloadEntry: PRELOAD_WORKER_ENTRY, watch: 'proc', fenceDelayMs, log: (m) => logs.push(m), ...more });
  try { await body(s); } finally {
    const sum = await s.stop();
    return { openAtStop: sum.openAtStop, logs };
  }
}

const failures = (out: string): string[] => [...parseTap(out).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);

maybe('preload: a HOST3D MAPPABLE blob mapped twice, the server reads the bytes back; fence fds sync_wait returns from; counts back to zero', async (t) => {
  const stop = await withServer(0, async (s) => {
    const child = spawn(PROG, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv } });
    // When the client says it wrote, the server's view of that resource's memory must hold the bytes.
    let seen = '';
    const checked = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        const m = /# written res (\d+)/.exec(seen);
        if (!m || seen.includes('#checked')) return;
        seen += '#checked';
        s.snapshot().then((snap) => {
          const files = (snap.snapshot as Snapshot).files;
          const h = files.flatMap((f) => f.handles).find((x) => x.resId === Number(m[1]));
          t.is(h?.memory?.size, 4 * 4096);
          t.is(Buffer.from(h?.memory?.head ?? '', 'hex').toString('latin1').split('\0')[0], 'virtgpu-emu blob mmap', 'the server reads what the client wrote');
          t.like((snap.counts as CountsLike), { blobMemory: 1, blobMemoryBytes: 4 * 4096 });
          child.stdin!.write('go\n');
          resolve();
        }, reject);
      });
    });
    const done = collect(child, 60_000);
    await checked;
    const r = await done;
    t.is(r.code, 0, `failed: ${failures(r.stdout).join('; ')}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
    t.is(parseTap(r.stdout).size, 19, tail(r.stdout));
    const snap = await s.snapshot();
    t.true(allZero(snap.counts as CountsLike), JSON.stringify(snap.counts));
    t.like(snap.stats, { fenceFdsOut: 0, fenceFdsIn: 0, fenceFiles: 0 }, 'the server closed every fence fd of its own, and each released file\'s signalled eventfd');
    t.true(snap.stats.preloadMaps! >= 4, 'the mmaps went to the server');
  });
  t.is(stop.openAtStop, 0);
});

maybe(`preload: with a host that completes ${DELAY_MS} ms late the fence fd is not readable until then, and sync_wait returns after`, async (t) => {
  const stop = await withServer(DELAY_MS, async (s) => {
    const t0 = Date.now();
    const r = await collect(spawn(PROG, ['--delayed'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv } }), 60_000);
    t.is(r.code, 0, `failed: ${failures(r.stdout).join('; ')}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
    t.true(parseTap(r.stdout).has('not_readable_before_the_host_completes'));
    t.true(Date.now() - t0 >= DELAY_MS, 'sync_wait waited for the host');
    const snap = await s.snapshot();
    t.true(allZero(snap.counts as CountsLike), JSON.stringify(snap.counts));
    t.like(snap.stats, { fenceFdsOut: 0, fenceFdsIn: 0, fenceFiles: 0 });
  });
  t.is(stop.openAtStop, 0);
});

maybe(`preload: --fault fence:nth=1:delay=${DELAY_MS} — the first fence fd and the next one of its context are not readable until then; the trace has the fault`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-fence-fault-'));
  const trace = path.join(dir, 't.jsonl');
  const rule = `fence:nth=1:delay=${DELAY_MS}`;
  try {
    const stop = await withServer(0, async (s) => {
      const t0 = Date.now();
      const r = await collect(spawn(PROG, ['--fence-fault'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv } }), 60_000);
      t.is(r.code, 0, `failed: ${failures(r.stdout).join('; ')}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
      const tap = parseTap(r.stdout);
      for (const n of ['the_delayed_fence_is_not_readable', 'the_later_fence_waits_for_it', 'sync_wait_on_the_later_returns', 'the_delayed_one_signalled_by_then', 'sync_wait_returns']) t.true(tap.get(n)?.ok, n);
      t.true(Date.now() - t0 >= DELAY_MS, 'sync_wait waited for the delay');
      const snap = await s.snapshot();
      t.true(allZero(snap.counts as CountsLike), JSON.stringify(snap.counts));
      t.like(snap.stats, { fenceFdsOut: 0, fenceFdsIn: 0, fenceFiles: 0 });
    }, { faults: [rule], trace });
    t.is(stop.openAtStop, 0);
    t.is(stop.logs.filter((m) => m.includes(`fault ${rule} fired: SUBMIT_3D`)).length, 1, stop.logs.join('\n'));
    const { header, records } = readTrace(trace);
    t.deepEqual(header.options.faults, [rule]);
    const faults = records.filter((r) => r.t === 'fault') as unknown as Record<string, unknown>[];
    t.is(faults.length, 1, 'only the first submission');
    t.like(faults[0], { rule, kind: 'fence', name: 'SUBMIT_3D' });
    t.regex(faults[0]!.detail as string, new RegExp(`^fence 1 of context \\d+ ring 0: signalled ${DELAY_MS} ms after the host completes it$`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
