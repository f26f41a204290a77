// `serve`: start the transport, print exactly one ready line, stop cleanly on SIGINT/SIGTERM with a summary line.
import { deviceAxes, readyLine, summaryLine, type RunningServer } from '../cuse-dev/transport/common';
import { startTransport } from '../cuse-dev/transport/auto';
import { formatPerms, resolveNodePerms } from '../cuse-dev/transport/node-perms';
import { HandoffMailbox, UffdHandoff } from '../uffd';
import { injectionLine } from './policy';
import type { CliServeOptions } from './options';
import { SERVE_WORKER_ENTRY } from './serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from './preload-worker-main';

const err = (m: string): void => { process.stderr.write(`virtgpu-emu: ${m}\n`); };

/**
 * The preload handshake runs HERE, on the main thread: the serving worker is blocked in read(2) between requests,
 * while a preloaded client hands its userfaultfd over before its main() runs. Accepted fds are published to the
 * worker's provider through a shared mailbox (uffd/acquire.ts HandoffMailbox).
 */
async function startHandoff(opts: CliServeOptions): Promise<{ sab: SharedArrayBuffer; env: Record<string, string>; close: () => Promise<void> } | null> {
  if (opts.watch === 'proc' || opts.watch === 'none' || deviceAxes(opts).mode === 'pin') return null;
  try {
    const mailbox = new HandoffMailbox();
    // The channel's socket admits whom the node admits (its owner, group and mode; the credential checks apply to
    // everyone who gets in).
    const perms = resolveNodePerms(opts);
    const root = process.geteuid?.() === 0; // an unprivileged server cannot give its socket away
    const h = await UffdHandoff.listen({ mailbox, log: (m) => err(m), mode: perms.mode, uid: root ? perms.uid : undefined, gid: root ? perms.gid : undefined });
    const env = h.env();
    if (!env.LD_PRELOAD) err('note: the preload library is not built (npm install): clients cannot hand over a userfaultfd');
    return { sab: mailbox.sab, env, close: () => h.close() };
  } catch (e) {
    err(`note: no userfaultfd handoff (${(e as Error).message.split('\n')[0]}): clients are watched through /proc`);
    return null;
  }
}

export async function startServer(opts: CliServeOptions): Promise<RunningServer> {
  const handoff = await startHandoff(opts);
  let s: RunningServer;
  try {
    s = await startTransport(opts.transport, { ...opts, workerEntry: SERVE_WORKER_ENTRY, preloadEntry: PRELOAD_WORKER_ENTRY, handoff: handoff?.sab, log: (m) => err(m) });
  } catch (e) {
    await handoff?.close();
    throw e;
  }
  for (const n of s.notes) err(`note: ${n}`);
  err(`node ${s.path}: ${formatPerms(s.perms)}`);
  err(injectionLine(opts));
  if (!handoff) return s;
  const stop = s.stop.bind(s);
  return Object.assign(s, {
    clientEnv: { ...s.clientEnv, ...handoff.env },
    stop: async () => { try { return await stop(); } finally { await handoff.close(); } },
  });
}

/** Exit without hanging on a serving thread blocked in read(2) (process.exit would join it forever). */
export function exitProcess(s: RunningServer | undefined, code: number): never {
  if (s?.stuck()) {
    err('serving thread still blocked in read(2): killing the process');
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}

export async function serve(opts: CliServeOptions): Promise<never> {
  const s = await startServer(opts);
  // Handlers first: a SIGTERM sent as soon as the ready line is read must stop the server, not kill it mid-mount.
  return new Promise<never>(() => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) { err(`${sig} again: exiting now`); exitProcess(s, 1); }
      stopping = true;
      s.stop().then(
        (sum) => { process.stdout.write(summaryLine(sum) + '\n'); exitProcess(s, 0); },
        (e: Error) => { err(`stop failed: ${e.message}`); exitProcess(s, 1); },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.stdout.write(readyLine(s) + '\n');
    if (s.clientEnv) err(`clients hand their userfaultfd over when started with: ${Object.entries(s.clientEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  });
}
