// `npm run bench [-- NAME…]`: every bench module's main() in order, tables printed as they finish.
// A NAME argument keeps the benches whose name contains it. Each module is loaded only when chosen, and one that
// fails to load (bench/watch needs the native addon) is reported and skipped: the others still run.
// bench/core needs `node --expose-gc` for its heap numbers: re-exec with it when global.gc is missing.
import { spawnSync } from 'child_process';

/** Bench modules by name, in run order; each exports main(): string | Promise<string>. */
const BENCHES = ['core', 'callers', 'transport', 'watch', 'stall', 'transport-vm'] as const;

type BenchModule = { main?: () => string | Promise<string> };

function load(name: string): BenchModule | string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(`./${name}`) as BenchModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && err.message.includes(`./${name}`)) return `bench/${name}.ts not present`;
    return `bench/${name} failed to load: ${err.message.split('\n')[0]}`;
  }
}

export async function runAll(filters: string[]): Promise<number> {
  const chosen = BENCHES.filter((b) => filters.length === 0 || filters.some((f) => b === f || (!(BENCHES as readonly string[]).includes(f) && b.includes(f))));
  if (chosen.length === 0) {
    console.error(`no bench matches ${filters.join(', ')}; known: ${BENCHES.join(', ')}`);
    return 2;
  }
  let failed = 0;
  for (const name of chosen) {
    const m = load(name);
    if (typeof m === 'string') { console.log(`## bench/${name}\n\n(skipped: ${m})\n`); continue; }
    if (typeof m.main !== 'function') { console.log(`## bench/${name}\n\n(skipped: no main() export)\n`); continue; }
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
  runAll(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
