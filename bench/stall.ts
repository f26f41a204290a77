// bench/stall: what one client's big userptr create costs the others. A real `virtgpu-emu serve` (FUSE, default
// watcher, clients unmodified: ptrace injection) and the C clients of tests/c/big_create: one creates a userptr
// over an untouched mapping of SIZE MiB, a second issues GETPARAM in a loop meanwhile (its latency), a third one
// VERSION once the server has begun faulting in the creator's pages. The server's RSS is read from /proc.
// `node dist/bench/stall.js [MIB…]` (default 1024 4096); extra node flags for the server (e.g. --cpu-prof) via
// VIRTGPU_BENCH_SERVER_NODE_ARGS, as in bench/transport.
import * as os from 'os';
import { header, table } from './lib/measure';
import { runBigCreate } from '../tests/helpers/big-create';

export async function main(sizes = [1024, 4096]): Promise<string> {
  const out = [header(`npm run bench -- stall`)];
  for (const mib of sizes) {
    const r = await runBigCreate({ mib, timeoutMs: 300_000 });
    const noopMs = Number(r.noopEnd - r.noopStart) / 1e6;
    out.push('', table(`one client creates a ${mib} MiB userptr (untouched pages) while two others use the node`, [
      { name: `CREATE_BLOB(userptr, ${mib} MiB), as the creator measures it`, value: r.createMs, unit: 'ms', note: `rc ${r.createRc}` },
      { name: 'another client: one VERSION issued during the create', value: noopMs, unit: 'ms', note: r.noopEnd < r.createEnd ? 'returned before the create' : 'returned AFTER the create (stalled)' },
      { name: 'a third client: GETPARAM in a loop during the create, median', value: r.lat.p50Us, unit: 'µs', note: `n=${r.lat.n}` },
      { name: 'same, p99', value: r.lat.p99Us / 1000, unit: 'ms', note: '' },
      { name: 'same, max', value: r.lat.maxUs / 1000, unit: 'ms', note: 'includes the create itself once prepared (pagemap read, host entries, watcher registration)' },
      { name: 'server RSS before the create', value: r.serverRssBeforeMiB, unit: 'MiB', note: '' },
      { name: 'server peak RSS (VmHWM)', value: r.serverPeakMiB, unit: 'MiB', note: '' },
      { name: 'server RSS after the creator closed its file', value: r.serverRssAfterMiB, unit: 'MiB', note: '' },
    ]));
  }
  out.push('', `load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs shared with other work: timings vary run to run)`);
  return out.join('\n');
}

if (require.main === module) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  main(sizes.length ? sizes : undefined).then((s) => console.log(s), (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
