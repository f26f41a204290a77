// A short random-ioctl soak through the real FUSE node (`npm run soak` runs 1,000,000): one C client sends 30,000
// random (cmd, bytes) ioctls; every call gets a result or an errno (never EIO, a server bug), the server logs one
// line per errno class of the file and a count at close (a proportionally tiny number of lines), and every count is
// back to zero after the client's close. Timings and RSS are logged, not asserted.
import test from 'ava';
import * as fs from 'fs';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { runSoak, SOAK_BIN } from './soak-run';

const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const N = 30_000;

maybe(`soak: ${N} random ioctls from one client through FUSE: errnos only, a few log lines with a summary at close, counts at zero${fuse.ok ? '' : ` (skipped: ${fuse.reason})`}`, async (t) => {
  t.timeout(60_000);
  if (!fs.existsSync(SOAK_BIN)) return t.fail(`${SOAK_BIN} is missing: run \`make -C tests/c\` (scripts/setup.sh does)`);
  const r = await runSoak({ n: N, seed: Date.now() % 100_000, timeoutMs: 50_000 });
  t.log(`seed ${r.seed}: ${r.clientLine}`);
  t.log(`log lines ${r.logLines.length} (${r.logBytes} bytes); RSS ${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB`);
  t.is(r.clientCode, 0, `client exit ${r.clientCode ?? r.clientSignal}: ${r.clientLine}\n${r.clientStderr}`);
  t.false('EIO' in r.errnos, 'EIO means a handler threw (a server bug)');
  const total = Object.values(r.errnos).reduce((a, b) => a + b, 0) + Number(/ok=(\d+)/.exec(r.clientLine)?.[1] ?? NaN);
  t.is(total, N, 'every ioctl answered with a result or an errno');
  // 1M ioctls must log < 1,000 lines: 30k get well under 30 (one line per errno class of the file + the summary).
  t.true(r.logLines.length < 30, r.logLines.join('\n'));
  const summary = r.logLines.find((l) => /^file \d+ pid \d+: [\d,]+ further ioctl errors suppressed: E[A-Z]+ [\d,]+/.test(l));
  t.truthy(summary, `no suppression summary at close:\n${r.logLines.join('\n')}`);
  t.deepEqual(Object.entries(r.countsAfter).filter(([, v]) => v !== 0), [], 'every count back to zero after the close');
  t.is(r.retainedAfter, 0, 'the host holds no client data after the close');
  t.is(r.summary.ioctls, N);
  t.is(r.summary.openAtStop, 0);
});
