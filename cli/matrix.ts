// `matrix`: every create_blob layout a program can be built with, against every uAPI revision, through the real FUSE
// node. One server per revision (`--uapi`, a trace file); the C probe tests/c/bin/layout_probe runs once per layout
// and sends a GUEST and a HOST3D blob; the trace says what the kernel read from bytes 48–71 and whether the create
// took the userptr path. Printed as Markdown (docs/uapi-revisions.md explains the revisions; the README carries it).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { UAPI, UAPI_NAMES, type UapiName } from '../core';
import { startServer } from './serve';

/** The layouts, with what a program built with each means by its GUEST request. */
export const LAYOUTS = [
  { name: '48', who: 'mainline ≤ 7.1', guest: 'blob' },
  { name: '56-hints', who: 'mainline 7.2, DEFER_MAPPING', guest: 'blob' },
  { name: '56-userptr', who: 'series v3–v5', guest: 'userptr' },
  { name: '64-v1', who: 'series v1/v2', guest: 'userptr' },
  { name: '64-v6', who: 'series v6, HINT_USERPTR', guest: 'userptr' },
  { name: '72-userptr', who: 'libhsakmt, USE_USERPTR', guest: 'userptr' },
  { name: '72-svm', who: 'libhsakmt, USE_SVM', guest: 'userptr' },
] as const;

const PROBE = path.resolve(__dirname, '../../tests/c/bin/layout_probe');
const CREATE_BLOB = 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB';
const TAIL = ['blob_hints', 'pad2', 'userptr', 'svm', 'offset'] as const;
const SHORT: Record<string, string> = { blob_hints: 'hints', pad2: 'pad2', userptr: 'ptr', svm: 'svm', offset: 'off' };

interface Cell { result: string; path: 'userptr' | 'blob' | null; addr?: number; read: Record<string, bigint> }
interface Probe { addr: bigint; guest: Cell; host3d: Cell }

/** A value of bytes 48–71 in terms of the probe's address A: A, its low or high half, or the number. */
function sym(v: bigint, a: bigint): string {
  if (v === 0n) return '0';
  if (v === a) return 'A';
  if (v === (a & 0xffffffffn)) return 'A.lo';
  if (v === a >> 32n) return 'A.hi';
  return '0x' + v.toString(16);
}

type Ev = Record<string, unknown> & { t: string; pid?: number };

/** The two creates of one probe process, from the trace: result, fields past byte 48, the userptr path if taken. */
function cellsOf(events: Ev[], pid: number): Cell[] {
  const cells: Cell[] = [];
  let up: Ev | null = null;
  for (const e of events) {
    if (e.pid !== pid) continue;
    if (e.t === 'userptr') up = e;
    if (e.t !== 'ioctl' || e.name !== CREATE_BLOB) continue;
    const inF = (e.in ?? {}) as Record<string, unknown>;
    const read: Record<string, bigint> = {};
    for (const k of TAIL) if (k in inF) read[k] = BigInt(inF[k] as string | number);
    cells.push({ result: String(e.result), path: up ? 'userptr' : String(e.result) === 'EINVAL' ? null : 'blob', addr: up ? (up.addr as number) : undefined, read });
    up = null;
  }
  return cells;
}

/** Serve revision `u` over FUSE, run every layout's probe and GETPARAM 9, and read the trace back. */
async function runRevision(u: UapiName): Promise<{ probes: Map<string, Probe>; param9: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-matrix-'));
  const trace = path.join(dir, 'trace.jsonl');
  const s = await startServer({ transport: 'fuse', mountDir: path.join(dir, 'mnt'), uapi: u, trace, inject: false, log: () => undefined });
  const runs: { layout: string; pid: number; out: string }[] = [];
  let param9 = '';
  try {
    for (const l of [...LAYOUTS.map((x) => x.name), 'getparam9']) {
      const r = spawnSync(PROBE, [l], { encoding: 'utf8', env: { ...process.env, VIRTGPU_EMU_DEVICE: s.path }, timeout: 20_000 });
      if (r.status !== 0) throw new Error(`layout_probe ${l} under ${u}: exit ${r.status ?? r.error?.message}: ${r.stderr}`);
      if (l === 'getparam9') {
        const [, rc, v] = r.stdout.trim().split(' ');
        param9 = rc === '0' ? v! : rc!;
      } else runs.push({ layout: l, pid: r.pid!, out: r.stdout });
    }
  } finally {
    await s.stop();
  }
  const events = fs.readFileSync(trace, 'utf8').trim().split('\n').map((x) => JSON.parse(x) as Ev);
  fs.rmSync(dir, { recursive: true, force: true });
  const probes = new Map<string, Probe>();
  for (const r of runs) {
    const addr = BigInt(/^addr (0x[0-9a-f]+)$/m.exec(r.out)![1]!);
    const [guest, host3d] = cellsOf(events, r.pid);
    if (!guest || !host3d) throw new Error(`no trace of layout_probe ${r.layout} under ${u}`);
    probes.set(r.layout, { addr, guest, host3d });
  }
  return { probes, param9 };
}

/**
 * Would the outcome mislead a program built with this layout? Not when the kernel rejects the request (EINVAL);
 * otherwise when it took another path than the program meant (a plain blob for its memory, or its memory for a
 * plain blob), read another address than the program's, or dropped the program's hint.
 */
export function misleads(layout: string, meant: 'userptr' | 'blob', c: Cell, a: bigint): boolean {
  if (c.result === 'EINVAL') return false;
  if (c.path !== meant) return true;
  if (c.path === 'userptr' && BigInt(c.addr ?? 0) !== a) return true;
  return layout === '56-hints' && c.read.blob_hints !== 1n;
}

function cellText(layout: string, meant: 'userptr' | 'blob', c: Cell, a: bigint): string {
  if (c.result === 'EINVAL') return 'EINVAL';
  const where = c.path === 'userptr' ? `userptr ${sym(BigInt(c.addr ?? 0), a)}` : 'blob';
  return `${c.result} ${where}${misleads(layout, meant, c, a) ? ' ⚠' : ''}`;
}

function readText(c: Cell, a: bigint): string {
  const parts = Object.entries(c.read).map(([k, v]) => `${SHORT[k]}=${sym(v, a)}`);
  return parts.length ? parts.join(' ') : '—';
}

export async function matrixMarkdown(): Promise<string> {
  if (!fs.existsSync(PROBE)) throw new Error(`${PROBE} is not built (make -C tests/c)`);
  const res = new Map<UapiName, Awaited<ReturnType<typeof runRevision>>>();
  for (const u of UAPI_NAMES) res.set(u, await runRevision(u));
  const head = `| layout (a program built for) | request | ${UAPI_NAMES.join(' | ')} |\n|---|---|${UAPI_NAMES.map(() => '---|').join('')}`;
  const rows: string[] = [];
  const reads: string[] = [];
  for (const l of LAYOUTS) {
    for (const req of ['guest', 'host3d'] as const) {
      const meant = req === 'guest' ? l.guest : 'blob';
      const cells = UAPI_NAMES.map((u) => { const p = res.get(u)!.probes.get(l.name)!; return cellText(l.name, meant, p[req], p.addr); });
      rows.push(`| ${req === 'guest' ? `${l.name} (${l.who})` : ''} | ${req === 'guest' ? 'GUEST' : 'HOST3D'} | ${cells.join(' | ')} |`);
    }
    reads.push(`| ${l.name} | ${UAPI_NAMES.map((u) => { const p = res.get(u)!.probes.get(l.name)!; return readText(p.guest, p.addr); }).join(' | ')} |`);
  }
  const p9 = UAPI_NAMES.map((u) => { const v = res.get(u)!.param9; return /^\d+$/.test(v) && UAPI[u].param9 !== 'blob-alignment' ? `${v} ⚠` : v; });
  rows.push(`| 56-hints (mainline 7.2) | GETPARAM 9 (blob alignment) | ${p9.join(' | ')} |`);
  return [
    'Result of each create (`blob`: an ordinary blob; `userptr X`: the userptr path with address X, A being the program\'s',
    'own address) and ⚠ where the outcome would mislead the program: another path than it meant, another address, a hint',
    'dropped, a capability read as an alignment. EINVAL is an honest refusal.',
    '',
    head,
    ...rows,
    '',
    'Bytes 48–71 of the GUEST request as each revision reads them (A: the address, A.lo / A.hi: its halves):',
    '',
    `| layout | ${UAPI_NAMES.join(' | ')} |\n|---|${UAPI_NAMES.map(() => '---|').join('')}`,
    ...reads,
  ].join('\n');
}

export async function matrix(): Promise<number> {
  process.stdout.write((await matrixMarkdown()) + '\n');
  return 0;
}
