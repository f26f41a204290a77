// A ROCm-style compute UMD (tests/c/hsakmt_umd.c, written from the HSAKMT protocol facts) against the emulated
// HSAKMT host, end to end on the system's libdrm: under plain `virtgpu-emu run -- CMD` (the transport a UMD developer
// gets: preload, for a dynamically linked command) in SVM and non-SVM mode with both MEMORY request generations; and
// under a served preload transport with every count,
// guest and host side, back to zero after it.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import { allZero, collect, parseTap, tail, type CountsLike } from '../helpers/clients';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from '../../cli/preload-worker-main';
import { findPreload } from '../../uffd';
import type { Snapshot } from '../../core';

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
