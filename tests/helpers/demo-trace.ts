// The demo session as `npm start` runs it (`virtgpu-emu run -- tests/c/bin/demo`), over the real FUSE node with
// --trace: the recorded trace the report tests read.
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { collect, type Done } from './clients';

export const ROOT = path.resolve(__dirname, '../../..');
export const MAIN = path.join(ROOT, 'dist/cli/main.js');
export const DEMO = path.join(ROOT, 'tests/c/bin/demo');

/** Run the CLI with `args`; resolves when it exits. */
export function cli(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): Promise<Done> {
  return collect(spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env }), timeoutMs);
}

/** Record the demo into `dir`/demo.jsonl (FUSE, notifier mode, `extra` serve options); throws when the demo fails. */
export async function recordDemo(dir: string, extra: string[] = []): Promise<{ trace: string; run: Done }> {
  const trace = path.join(dir, 'demo.jsonl');
  fs.mkdirSync(path.join(dir, 'mnt'), { recursive: true });
  const run = await cli(['run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--trace', trace, ...extra, '--', DEMO], 60_000, { ...process.env, VIRTGPU_EMU_MODE: 'notifier' });
  if (run.code !== 0) throw new Error(`demo exited ${run.code}:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-1000)}`);
  return { trace, run };
}
