// `virtgpu-emu replay TRACE`: every userptr_scenarios variant the e2e suite runs (and the demo), recorded over the
// real FUSE node with --trace, replays in process with no difference; a deliberately altered trace reports the
// difference (exit 1); a damaged one is refused (exit 2).
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { cli, DEMO, ROOT } from '../helpers/demo-trace';

const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;
const SCENARIOS = path.join(ROOT, 'tests/c/bin/userptr_scenarios');

/** The server variants of tests/e2e/fuse-c-client.test.ts. */
const VARIANTS: { label: string; mode: 'notifier' | 'pin'; args: string[] }[] = [
  { label: 'notifier', mode: 'notifier', args: [] },
  { label: 'notifier+proc', mode: 'notifier', args: ['--watch', 'proc'] },
  { label: 'notifier+uffd', mode: 'notifier', args: ['--watch', 'uffd'] },
  { label: 'pin', mode: 'pin', args: ['--mode', 'pin'] },
  ...(['v2', 'v3', 'v4', 'v5', 'v6'] as const).map((u) => ({ label: `uapi ${u}`, mode: 'pin' as const, args: ['--uapi', u] })),
  { label: 'uapi libhsakmt-72', mode: 'notifier', args: ['--uapi', 'libhsakmt-72'] },
];

async function record(cmd: string, mode: 'notifier' | 'pin', args: string[]): Promise<{ dir: string; trace: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-replay-'));
  const trace = path.join(dir, 't.jsonl');
  const r = await cli(['run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--trace', trace, ...args, '--', cmd], 120_000, { ...process.env, VIRTGPU_EMU_MODE: mode });
  if (r.code !== 0) throw new Error(`${cmd} exited ${r.code}: ${r.stdout.slice(-1500)}`);
  return { dir, trace };
}

for (const v of VARIANTS) {
  maybe(`${v.label}: the userptr_scenarios trace replays with no difference${skipWhy}`, async (t) => {
    const { dir, trace } = await record(SCENARIOS, v.mode, v.args);
    const r = await cli(['replay', trace], 120_000);
    t.is(r.code, 0, r.stdout.slice(0, 3000));
    t.regex(r.stdout, /replayed \d+ ioctls and \d+ host commands .*: no difference/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

maybe(`the demo's trace replays with no difference; altered, the difference is reported (exit 1); damaged, refused (exit 2)${skipWhy}`, async (t) => {
  const { dir, trace } = await record(DEMO, 'notifier', []);
  let r = await cli(['replay', trace]);
  t.is(r.code, 0, r.stdout);
  // Alter the recorded handle of the first userptr create's out fields, and a host command's resource.
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('"name":"DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB"') && l.includes('"result":0'));
  const j = lines.findIndex((l) => l.includes('"cmd":"CTX_ATTACH_RESOURCE"'));
  lines[i] = lines[i]!.replace(/("out":\{[^}]*"bo_handle":)1,/, '$17,');
  lines[j] = lines[j]!.replace(/"resId":(\d+)/, '"resId":99');
  const altered = path.join(dir, 'altered.jsonl');
  fs.writeFileSync(altered, lines.join('\n'));
  r = await cli(['replay', altered]);
  t.is(r.code, 1);
  t.regex(r.stdout, /DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB out fields differs\n {2}recorded: \{[^\n]*"bo_handle":7[^\n]*\n {2}replayed: \{[^\n]*"bo_handle":1,/);
  t.regex(r.stdout, /host command \d+ differs\n {2}recorded: \{"cmd":"CTX_ATTACH_RESOURCE","ctxId":1,"resId":99\}/);
  t.regex(r.stdout, /: 2 difference\(s\)/);
  const torn = path.join(dir, 'torn.jsonl');
  fs.writeFileSync(torn, fs.readFileSync(trace, 'utf8').slice(0, -30));
  r = await cli(['replay', torn]);
  t.is(r.code, 2);
  t.regex(r.stderr, /torn\.jsonl: truncated/);
  fs.rmSync(dir, { recursive: true, force: true });
});
