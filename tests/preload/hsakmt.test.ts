// A ROCm-style compute UMD (tests/c/hsakmt_umd.c, written from the HSAKMT protocol facts) against the emulated
// HSAKMT host, end to end on the system's libdrm: under plain `virtgpu-emu run -- CMD` (the transport a UMD developer
// gets: preload, for a dynamically linked command) in SVM and non-SVM mode with both MEMORY request generations; and
// under a served preload transport with every count,
// guest and host side, back to zero after it.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import { allZero, collect, parseTap, tail, type CountsLike } from '../helpers/clients';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from '../../cli/preload-worker-main';
import { findPreload } from '../../uffd';
import type { Snapshot } from '../../core';
import { parseServe, UsageError } from '../../cli/options';

const ROOT = path.resolve(__dirname, '../../..');
const PROG = path.join(ROOT, 'tests/c/bin/hsakmt_umd');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const maybe = findPreload() && fs.existsSync(PROG) ? test.serial : test.serial.skip;
/** The checks hsakmt_umd makes (each mode reports the sub-range and deregistration its own way). */
const CHECKS = 30;
const MODES: [string, string[]][] = [['non-SVM, 80-byte', []], ['SVM, 80-byte', ['--svm']], ['non-SVM, 312-byte', ['--gen', '312']], ['SVM, 312-byte', ['--svm', '--gen', '312']]];

const failures = (out: string): string[] => [...parseTap(out).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);

for (const [name, args] of MODES) {
  maybe(`virtgpu-emu run -- hsakmt_umd (${name}): every path of the UMD answered by the HSAKMT host`, async (t) => {
    const r = await collect(spawn(process.execPath, [MAIN, 'run', '--', PROG, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
    t.is(r.code, 0, `failed: ${failures(r.stdout).join('; ')}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
    t.is(parseTap(r.stdout).size, CHECKS, tail(r.stdout));
    t.regex(r.stderr, /transport preload/);
    t.regex(r.stderr, /hsakmt host: ctx \d+: an unknown ccmd/, 'the one bad ccmd the client sends is logged');
  });
}

maybe('served preload transport: guest and host counts (host contexts, resources, registrations, GPU mappings, allocations) back to zero after each mode', async (t) => {
  const logs: string[] = [];
  const s = await startTransport('preload', { workerEntry: SERVE_WORKER_ENTRY, preloadEntry: PRELOAD_WORKER_ENTRY, watch: 'auto', log: (m) => logs.push(m) });
  try {
    for (const [name, args] of MODES) {
      const r = await collect(spawn(PROG, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv } }), 90_000);
      t.is(r.code, 0, `${name}: ${failures(r.stdout).join('; ')}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
      // The node's release reaches the server after the client's exit: wait for it (bounded), never sleep blindly.
      let snap = await s.snapshot();
      for (const deadline = Date.now() + 5000; Date.now() < deadline && (snap.openFiles ?? 0) > 0;) { await new Promise((res) => setTimeout(res, 20)); snap = await s.snapshot(); }
      const c = snap.counts as CountsLike;
      t.true(allZero(c), `${name}: ${JSON.stringify(c)}`);
      const host = (snap.snapshot as Snapshot).host;
      t.deepEqual(host.counts, { routedContexts: 0, routedResources: 0, contexts: 0, resources: 0, registrations: 0, gpuMappings: 0, allocations: 0 }, name);
    }
  } finally {
    const sum = await s.stop();
    t.is(sum.openAtStop, 0);
  }
});

maybe('fault injection from the command line: a failed OPEN_KFD ends the client\'s open (no hang); delayed fences still complete every path', async (t) => {
  const failed = await collect(spawn(process.execPath, [MAIN, 'run', '--hsakmt-fail', 'QUERY_INFO/OPEN_KFD', '--', PROG], { stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
  t.is(failed.code, 1, tail(failed.stdout));
  t.false(parseTap(failed.stdout).get('open_kfd_vm_range')?.ok ?? true);
  const delayed = await collect(spawn(process.execPath, [MAIN, 'run', '--hsakmt-fence-delay-ms', '20', '--', PROG, '--svm'], { stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
  t.is(delayed.code, 0, `failed: ${failures(delayed.stdout).join('; ')}\n${tail(delayed.stderr)}`);
});

maybe('--trace: each ccmd decoded by name with its fields and reply', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-hsakmt-'));
  try {
    const file = path.join(dir, 'trace.jsonl');
    const r = await collect(spawn(process.execPath, [MAIN, 'run', '--trace', file, '--', PROG], { stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
    t.is(r.code, 0, tail(r.stdout));
    const ev = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>).filter((e) => e.t === 'ccmd');
    const names = new Set(ev.map((e) => e.name));
    for (const n of ['QUERY_INFO/OPEN_KFD', 'NOP', 'MEMORY/MAP_USERPTR', 'MEMORY/REG_MEM_WITH_FLAG', 'MEMORY/MAP_MEM_TO_GPU', 'MEMORY/ALLOC', 'MEMORY/AVAIL_MEM', 'MEMORY/UNMAP_TO_GPU', 'MEMORY/FREE', 'CCMD_99']) t.true(names.has(n), n);
    const open = ev.find((e) => e.name === 'QUERY_INFO/OPEN_KFD')!;
    t.like(open, { ret: 0, fields: { type: 1 }, reply: { vm_size: '0x100000000' } });
    const mu = ev.find((e) => e.name === 'MEMORY/MAP_USERPTR')!;
    t.regex(mu.reply.userptr_handle, /^0x[0-9a-f]+000$/, 'a page base');
    t.like(ev.find((e) => e.name === 'CCMD_99'), { error: 'unknown-cmd' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('options: --hsakmt-fail takes known ccmd names (an unknown one is a usage error listing them), --hsakmt-fence-delay-ms an integer', (t) => {
  t.like(parseServe(['--hsakmt-fail', 'MEMORY/ALLOC,NOP', '--hsakmt-fence-delay-ms', '5']).opts, { hsakmt: { fail: ['MEMORY/ALLOC', 'NOP'], fenceDelayMs: 5 } });
  const e = t.throws(() => parseServe(['--hsakmt-fail', 'MEMORY/ALOC']), { instanceOf: UsageError });
  t.regex(e!.message, /unknown: MEMORY\/ALOC/);
  t.regex(e!.message, /QUERY_INFO\/OPEN_KFD/);
  t.throws(() => parseServe(['--hsakmt-fence-delay-ms', '-1']), { instanceOf: UsageError });
});
