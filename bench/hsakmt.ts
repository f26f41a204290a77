// bench/hsakmt: one HSAKMT ccmd round trip (EXECBUFFER {RING_IDX|FENCE_FD_OUT} + poll of the fence fd + the spin on
// shmem.seqno, a NOP answered by the emulated host) against one no-op ioctl (DRM_IOCTL_VERSION, zero lengths), in the
// same client, same server, same run (tests/c/bin/hsakmt_umd --bench N under `virtgpu-emu run`: the preload transport).
import { execFileSync } from 'child_process';
import * as path from 'path';
import { header, table } from './lib/measure';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const UMD = path.join(ROOT, 'tests', 'c', 'bin', 'hsakmt_umd');
/** Ops per round (the client times 5 interleaved rounds of each kind and prints the medians). */
const N = 5000;

export function main(): string {
  const args = [CLI, 'run', '--', UMD, '--bench', String(N)];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 600_000 });
  const us: Record<string, number> = {};
  for (const l of out.split('\n')) if (l.startsWith('{')) { const j = JSON.parse(l) as { op: string; us_per_op: number }; us[j.op] = j.us_per_op; }
  if (us.ccmd_nop === undefined || us.noop_ioctl === undefined) throw new Error(`hsakmt_umd --bench printed no result:\n${out}`);
  return [
    header(`node dist/cli/main.js run -- tests/c/bin/hsakmt_umd --bench ${N}`), '',
    table('HSAKMT ccmd round trip vs a no-op ioctl (preload transport, same run)', [
      { name: 'no-op ioctl (DRM_IOCTL_VERSION, zero lengths)', value: us.noop_ioctl, unit: 'µs/op', note: 'baseline' },
      { name: 'ccmd NOP: EXECBUFFER + fence fd poll/close + seqno', value: us.ccmd_nop, unit: 'µs/op', baseline: us.noop_ioctl, note: 'goal ≤ 2×' },
    ]),
  ].join('\n');
}

if (require.main === module) console.log(main());
