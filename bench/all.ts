// `npm run bench [-- NAME…]`: every bench module's main() in order, tables printed as they finish.
// Arguments starting with -- are options for the benches (bench/scale's --quick). A NAME argument keeps the benches whose name contains it; one whose main() throws is reported and the others
// still run. The modules are imported statically (bench/watch loads the native addon when imported: build first).
// bench/core needs `node --expose-gc` for its heap numbers: re-exec with it when global.gc is missing.
import { spawnSync } from 'child_process';
import { applyServerV8Flags } from '../cli/v8-flags';
import * as core from './core';
import * as callers from './callers';
import * as transport from './transport';
import * as watch from './watch';
import * as stall from './stall';
import * as scale from './scale';
import * as transportVm from './transport-vm';
import * as report from './report';
import * as hsakmt from './hsakmt';

/** Bench modules by name, in run order. */
const BENCHES: ReadonlyArray<readonly [string, { main(): string | Promise<string> }]> = [
  ['core', core], ['callers', callers], ['transport', transport], ['watch', watch], ['stall', stall], ['scale', scale], ['transport-vm', transportVm], ['report', report], ['hsakmt', hsakmt],
];
const NAMES = BENCHES.map(([n]) => n);

export async function runAll(filters: string[]): Promise<number> {
  filters = filters.filter((f) => !f.startsWith('--')); // options (e.g. --quick) are read by the benches themselves
  const chosen = BENCHES.filter(([b]) => filters.length === 0 || filters.some((f) => b === f || (!NAMES.includes(f) && b.includes(f))));
  if (chosen.length === 0) {
    console.error(`no bench matches ${filters.join(', ')}; known: ${NAMES.join(', ')}`);
    return 2;
  }
  let failed = 0;
  for (const [name, m] of chosen) {
    console.log(`## bench/${name}\n`);
    try {
      console.log(await m.main());
    } catch (e) {
      failed++;
      console.log(`(failed: ${e instanceof Error ? e.stack ?? e.message : String(e)})`);
    }
    console.log('');
  }
  return failed ? 1 : 0;
}

if (require.main === module) {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  applyServerV8Flags(); // the in-process benches (core) run core as the server does
  runAll(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
