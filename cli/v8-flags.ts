// V8 settings of the server process (and of the benchmarks that measure what it runs).
// --no-allocation-site-pretenuring: a server keeps its clients' userptrs and BOs alive for long, then creates and
// drops objects of the same kinds per ioctl. V8's allocation-site pretenuring learns from the long-lived ones to
// allocate everything from those sites in the old generation, so each short-lived object of an ioctl survives until
// a full collection: at 100k live userptrs, create+close measured 11-16 µs with it and 4-6 µs without
// (bench/builds.ts, same build, alternating runs). V8 flags are process-wide: the serving threads get it too.
import * as v8 from 'v8';

export const SERVER_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

let applied = false;
/** Sets SERVER_V8_FLAGS for this process (once; before the serving threads start). */
export function applyServerV8Flags(): void {
  if (applied) return;
  applied = true;
  for (const f of SERVER_V8_FLAGS) v8.setFlagsFromString(f);
}
