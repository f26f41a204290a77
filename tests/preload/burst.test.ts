// The preload server serves its lanes in a blocking burst (cuse-dev/session/preload.ts lanesReadable, the addon's
// fdSet*): while clients keep it busy, the serving thread must still give its event loop every turn the loop needs.
// A real C client (tests/c/bin/ioctl_bench, preloaded) issues VERSION ioctls back to back, and meanwhile:
// - the main thread's snapshot requests (a message to the serving thread) are answered at once, not after the storm;
// - a second client's fence from a host that completes DELAY_MS late (a timer on the serving thread) signals on time;
// - a third client opens the node (a new lane: the channel's accept runs on the loop) and is served during the storm.
// Counts back to zero afterwards.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import { allZero, collect, parseTap, until, type CountsLike } from '../helpers/clients';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from '../../cli/preload-worker-main';
import { findPreload } from '../../uffd';

const ROOT = path.resolve(__dirname, '../../..');
const BENCH = path.join(ROOT, 'tests/c/bin/ioctl_bench');
const FENCE = path.join(ROOT, 'tests/c/bin/preload_mmap_fence');
const maybe = findPreload() && fs.existsSync(BENCH) && fs.existsSync(FENCE) ? test.serial : test.serial.skip;
const DELAY_MS = 300;

maybe('preload burst: snapshots, a delayed fence and a new client are served while another client keeps the lanes busy; counts back to zero', async (t) => {
  t.timeout(120_000);
  const s = await startTransport('preload', { workerEntry: SERVE_WORKER_ENTRY, preloadEntry: PRELOAD_WORKER_ENTRY, watch: 'proc', fenceDelayMs: DELAY_MS, log: () => undefined });
  try {
    const env = { ...process.env, ...s.clientEnv };
    const before = (await s.snapshot()).stats as Record<string, number>;
    // The storm: enough VERSION round trips to last seconds; it is stopped (SIGTERM) once the checks are done.
    const storm = spawn(BENCH, ['-n', '100000000', '-o', 'version', '/dev/dri/renderD128'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const stormDone = collect(storm, 110_000);
    try {
      // Wait until the storm is being served (its ioctls show in the counts).
      const t0 = Date.now();
      let ioctls = 0;
      while (Date.now() - t0 < 20_000) {
        ioctls = (await s.snapshot()).stats.ioctls ?? 0;
        if (ioctls > 20_000) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      t.true(ioctls > 20_000, `the storm is served (${ioctls} ioctls)`);

      // Snapshots during the storm: each one a message the serving thread answers between two requests.
      const lat: number[] = [];
      for (let i = 0; i < 10; i++) {
        const a = performance.now();
        const snap = await s.snapshot();
        lat.push(performance.now() - a);
        t.truthy(snap.counts);
      }
      lat.sort((a, b) => a - b);
      t.true(lat[lat.length - 1]! < 1000, `snapshot latency during the storm: ${lat.map((x) => x.toFixed(1)).join(', ')} ms`);

      // A second client with a fence the host completes DELAY_MS late (a timer on the serving thread): its
      // sync_wait returns, and the whole client finishes long before the storm would have.
      const a = performance.now();
      const fence = await collect(spawn(FENCE, ['--delayed'], { stdio: ['ignore', 'pipe', 'pipe'], env }), 30_000);
      const took = performance.now() - a;
      const bad = [...parseTap(fence.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
      t.is(fence.code, 0, fence.stderr);
      t.deepEqual(bad, []);
      t.true(took < 15_000, `the delayed-fence client took ${took.toFixed(0)} ms`);

      // A third client: a new lane accepted while the storm runs, served (VERSION x 1000).
      const third = await collect(spawn(BENCH, ['-n', '1000', '-o', 'version', '/dev/dri/renderD128'], { stdio: ['ignore', 'pipe', 'pipe'], env }), 30_000);
      t.is(third.code, 0, third.stderr);
      t.regex(third.stdout, /"us_per_op"/);
      t.is(storm.exitCode, null, 'the storm was still running throughout');
    } finally {
      storm.kill('SIGTERM');
      await stormDone;
    }
    // The clients' hang-ups reach the server as their lanes' and node sockets' EOFs, in any order with the snapshots.
    const after = await until('lanes and files released', () => s.snapshot(), (x) => x.stats.preloadLanes! <= before.preloadLanes! && x.openFiles === 0);
    t.true(allZero(after.counts as CountsLike), JSON.stringify(after.counts));
  } finally {
    const sum = await s.stop();
    t.is(sum.openAtStop, 0);
  }
});
