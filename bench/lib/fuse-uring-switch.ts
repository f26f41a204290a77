// The host-wide switch of FUSE-over-io_uring (/sys/module/fuse/parameters/enable_uring), turned on for a benchmark's
// server start only. The kernel offers FUSE_OVER_IO_URING at a connection's FUSE_INIT and accepts its ring
// registration only while the switch is on; once a connection uses the ring it keeps it with the switch off again, so
// the window is the start of one server: set, start, restore. The previous value is put back on every way out: the
// callback's return or throw, SIGINT/SIGTERM/SIGHUP (restored, then the signal re-raised), and process exit.
import * as fs from 'fs';

export const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring';

/** Why the switch cannot be used here (no io_uring support in the kernel's FUSE, or not writable), or null. */
export function uringSwitchUnavailable(file = ENABLE_URING): string | null {
  if (!fs.existsSync(file)) return `${file} missing: the kernel's FUSE has no io_uring (CONFIG_FUSE_IO_URING, Linux ≥ 6.14)`;
  try { fs.accessSync(file, fs.constants.W_OK); } catch { return `${file} not writable (root needed)`; }
  return null;
}

/**
 * Run `fn` with the switch on, restoring the value it had before (also on a signal or exit meanwhile).
 * `file` is for tests of this helper; benchmarks use the real switch.
 */
export async function withFuseUring<T>(fn: () => Promise<T>, file = ENABLE_URING): Promise<T> {
  const prev = fs.readFileSync(file, 'utf8').trim();
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    try { fs.writeFileSync(file, prev); } catch (e) { process.stderr.write(`could not restore ${file} to ${prev}: ${(e as Error).message}\n`); }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (sig: NodeJS.Signals): void => {
    restore();
    for (const s of signals) process.removeListener(s, onSignal);
    process.kill(process.pid, sig); // the default action now that our handler is gone
  };
  for (const s of signals) process.once(s, onSignal);
  process.once('exit', restore);
  try {
    fs.writeFileSync(file, 'Y');
    return await fn();
  } finally {
    restore();
    for (const s of signals) process.removeListener(s, onSignal);
    process.removeListener('exit', restore);
  }
}
