// `run [serve options] -- CMD ARGS…`: serve, run CMD with VIRTGPU_EMU_DEVICE=<node>, stop, exit with CMD's status.
// Our own lines go to stderr so CMD's stdout stays its own.
// CMD is started through the launcher (uffd/native/launch.c), so that it is not this server's child: the server never
// ptrace-injects into its own children (uffd/provider.ts), and injection is how a statically linked CMD, which ignores
// LD_PRELOAD, gets its userfaultfd watched. The launcher relays CMD's exit status and our signals, and takes CMD
// down with it if this process dies.
// Transport under `--transport auto` (the default): a dynamically linked CMD (cli/elf.ts) gets the preload transport,
// which serves it the node without root or /dev/fuse; a static one (it cannot be preloaded) CUSE, else FUSE.
import { spawn } from 'child_process';
import { constants } from 'os';
import { readyLine, summaryLine } from '../cuse-dev/transport/common';
import { findLauncher } from '../uffd';
import { startServer, exitProcess } from './serve';
import { UsageError, type CliServeOptions } from './options';
import { commandLinkage } from './elf';
import { probePreload } from '../cuse-dev/transport/auto';

/** argv that starts CMD through the launcher; CMD itself (announced) when the launcher is not built. */
export function launchArgv(cmd: string[], launcher: string | null = findLauncher(), log: (m: string) => void = () => undefined): string[] {
  if (launcher) return [launcher, ...cmd];
  log('note: the launcher is not built (npm install): the command is this server\'s child, never injected into; a statically linked one is watched through /proc');
  return cmd;
}

export async function runCommand(opts: CliServeOptions, cmd: string[]): Promise<never> {
  if (cmd.length === 0) throw new UsageError('run needs a command after --');
  let chosen = opts;
  if (opts.transport === 'auto') {
    const linkage = commandLinkage(cmd[0]!);
    if (linkage === 'dynamic' && probePreload().ok) chosen = { ...opts, transport: 'preload' };
    process.stderr.write(`virtgpu-emu: ${cmd[0]} is ${linkage === 'unknown' ? 'not an ELF program we can read' : `linked ${linkage}ally`}: transport ${chosen.transport === 'preload' ? 'preload' : 'cuse, else fuse'}\n`);
  }
  const s = await startServer(chosen);
  process.stderr.write(readyLine(s) + '\n');
  const argv = launchArgv(cmd, undefined, (m) => process.stderr.write(`virtgpu-emu: ${m}\n`));
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, ...s.clientEnv /* LD_PRELOAD (ours first, the caller's kept) + handoff socket */, VIRTGPU_EMU_DEVICE: s.path, VIRTGPU_EMU_UAPI: s.uapi, VIRTGPU_EMU_MODE: s.mode, VIRTGPU_EMU_WATCH: chosen.watch ?? 'auto' } });
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const status = await new Promise<number>((resolve) => {
    child.on('error', (e) => { process.stderr.write(`virtgpu-emu: cannot run ${cmd[0]}: ${e.message}\n`); resolve(127); });
    child.on('exit', (code, signal) => resolve(code ?? 128 + ((signal && (constants.signals as Record<string, number>)[signal]) || 0)));
  });
  // RELEASE reaches us after the client's close() returned (or its exit): give the kernel a moment to deliver it,
  // so the summary counts a clean release instead of closing the file ourselves.
  for (const deadline = Date.now() + 2000; Date.now() < deadline;) {
    try { if ((await s.snapshot()).openFiles === 0) break; } catch { break; }
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    const sum = await s.stop();
    process.stderr.write(summaryLine(sum) + '\n');
  } catch (e) {
    process.stderr.write(`virtgpu-emu: stop failed: ${(e as Error).message}\n`);
  }
  return exitProcess(s, status);
}
