// Fuzz the drm_ioctl dispatcher (docs/semantics.md §2): ≥ 100k random (cmd, bytes) from one process on two of its files, while
// another process's file (userptrs + a context) must stay exactly as it was. Every call returns a result ≥ 0 or an
// Errno with a code (never throws, no handler bug → EIO); out bytes follow the _IOC rule; stats and counts stay
// consistent; each row only returns errnos its table row lists (+ EFAULT where it reads user pointers); closing
// everything returns every count to zero. FUZZ_SEED / FUZZ_CALLS override the seed and the number of calls.
import test, { type ExecutionContext } from 'ava';
import { isErr, cmdOf, type DeviceFile, type IoctlRow, type Snapshot } from '../../core';
import { PROT_NONE, PROT_R, PROT_RW, type SimProcess } from '../../core/testing';
import { Harness, HSAKMT, USE_USERPTR } from '../helpers/core-harness';
import * as B from '../helpers/bytes';
import { Rng, randomArg, randomCmd, type PointerPool } from '../helpers/fuzz-ioctl';

const CALLS = process.env.FUZZ_CALLS ? Number(process.env.FUZZ_CALLS) : 120_000;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (process.pid << 16)) >>> 0;
const PAGE = 4096;
const USER_END = 0x7ffffffff000;
const IOC_OUT = 2 << 30;
const DRM_TYPE = 0x64;
const EFAULT_CODE = 'EFAULT';

/** Handler exceptions tolerated while their fix is pending; none today (past ones are the "fixed bug" tests at the end). */
const KNOWN_BUGS: { row: string; signature: RegExp }[] = [];

function ok(v: unknown, what: string): void { if (v !== 0 && v !== 3) throw new Error(`setup: ${what} → ${String(v)}`); }

/** The parts of a file's snapshot that fuzzing another file must never change. */
function fileView(s: Snapshot, id: number): unknown {
  const f = s.files.find((x) => x.id === id);
  return f && { ctx: f.ctx, queued: f.queued, clients: f.clients, handles: f.handles };
}

function consistency(h: Harness): string[] {
  const s = h.dev.snapshot();
  const c = s.counts;
  const bad: string[] = [];
  let handles = 0, pins = 0, regs = 0, queued = 0, ctxs = 0;
  for (const f of s.files) {
    handles += f.handles.length; queued += f.queued; if (f.ctx) ctxs++;
    for (const x of f.handles) if (x.userptr) { pins += x.userptr.npages; if (x.userptr.registered) regs++; }
  }
  const want = { files: s.files.length, handles, resources: handles, pins, registrations: regs, queued, contexts: ctxs };
  for (const [k, v] of Object.entries(want)) if ((c as unknown as Record<string, number>)[k] !== v) bad.push(`counts.${k} = ${(c as unknown as Record<string, number>)[k]}, snapshot says ${v}`);
  if (h.host.liveResources() !== c.resources) bad.push(`host live resources ${h.host.liveResources()} ≠ counts.resources ${c.resources}`);
  return bad;
}

type Uapi = 'v1' | 'v2' | 'v3' | 'v4' | 'v5' | 'v6' | 'mainline' | 'libhsakmt-72';

/**
 * A userptr create in the revision's own struct (written from docs/uapi-revisions.md): v6 selects by HINT_USERPTR in
 * its 64-byte struct, mainline has no userptr (an ordinary HOST3D_GUEST blob of the same size instead), the others
 * take v1's first 56/64/72 bytes with USE_USERPTR.
 */
function setupCreate(h: Harness, uapi: Uapi, f: DeviceFile, p: SimProcess, addr: number, len: number): number | string {
  const HINT_USERPTR = 0x2;
  switch (uapi) {
    case 'v6': return h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlobV6({ blobMem: 3, flags: 0, size: len, blobId: 0x1234, hints: HINT_USERPTR, userptr: addr })).ret;
    case 'mainline': return h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_56, B.createBlobHints({ blobMem: 3, flags: 0, size: Math.ceil(len / PAGE) * PAGE, blobId: 0x1234 })).ret;
    case 'libhsakmt-72': return h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_72, B.createBlob72({ blobMem: 3, flags: USE_USERPTR, size: len, blobId: 0x1234, userptr: addr })).ret;
    case 'v3': case 'v4': case 'v5': return h.create(f, p, addr, len, USE_USERPTR, 3, B.VIRTGPU_RESOURCE_CREATE_BLOB_56).ret;
    default: return h.create(f, p, addr, len).ret;
  }
}

function fuzz(t: ExecutionContext, profile: 'hsakmt' | 'virgl' | '2d', calls: number, seed: number, uapi: Uapi = 'v1'): void {
  const t0 = Date.now();
  const logs: string[] = [];
  const h = new Harness({ log: (m) => logs.push(m), profile, uapi });
  const c = (f: DeviceFile, p: SimProcess, addr: number, len: number): number | string => setupCreate(h, uapi, f, p, addr, len);
  const rows = h.dev.rows();
  const full = profile === 'hsakmt';

  // The bystander: process 1, one file with a context and a few valid userptrs (hsakmt) or a 3D/2D resource.
  const p1 = h.proc();
  const f1 = h.open(p1);
  if (full) {
    ok(h.initHsakmt(f1, p1), 'P1 CONTEXT_INIT');
    const m1 = p1.mmap(32 * PAGE);
    // v6 takes page-aligned ranges only
    for (const [off, len] of [[0, 8 * PAGE], [uapi === 'v6' ? 8 * PAGE : 8 * PAGE + 123, 4 * PAGE], [16 * PAGE, 16 * PAGE]]) ok(c(f1, p1, m1 + off, len), 'P1 create');
    ok(c(f1, p1, m1 + 17 * PAGE, PAGE), 'P1 dedup');
  } else {
    // drm_virtgpu_resource_create: target 2 (2D texture), format 1, width/height 16, depth/array_size 1
    ok(h.ioctl(f1, p1, B.VIRTGPU_RESOURCE_CREATE, new B.W(56).u32(0, 2).u32(4, 1).u32(12, 16).u32(16, 16).u32(20, 1).u32(24, 1).b).ret, 'P1 RESOURCE_CREATE');
  }
  const snap1 = h.dev.snapshot().files.find((x) => x.id === f1.id)!;
  const before = fileView(h.dev.snapshot(), f1.id);
  const f1Res = new Set(snap1.handles.map((x) => x.resId));
  const f1Ctx = snap1.ctx?.id ?? -1;
  const hostMark = h.host.log.length;

  // The fuzzer: process 2, one fresh file (no context) and one HSAKMT file with two userptrs.
  const p2 = h.proc();
  const fresh = h.open(p2);
  const hsa = h.open(p2);
  const regions = { rw: p2.mmap(16 * PAGE), ro: p2.mmap(PAGE, PROT_R), none: p2.mmap(PAGE, PROT_NONE), shm: p2.mmap(4 * PAGE, PROT_RW, { shared: true }) };
  if (full) {
    ok(h.initHsakmt(hsa, p2), 'P2 CONTEXT_INIT');
    ok(c(hsa, p2, regions.rw, 4 * PAGE), 'P2 create');
    ok(c(hsa, p2, regions.shm, 4 * PAGE), 'P2 create shm');
  }
  // CONTEXT_INIT param arrays in P2's memory: HSAKMT, VIRGL2 + rings, a debug name, a bad param.
  const parr = p2.mmap(PAGE);
  p2.write(parr + 512, new TextEncoder().encode('fuzz\0'));
  const paramSets: [number, number | bigint][][] = [[[1, HSAKMT]], [[1, 2], [2, 4], [3, 3]], [[4, parr + 512], [1, HSAKMT]], [[9, 1]], [[1, 7]]];
  const params = paramSets.map((ps, i) => { p2.write(parr + i * 64, B.ctxParams(ps)); return parr + i * 64; });
  const pool: PointerPool = {
    params,
    valid: [regions.rw, regions.rw + 8 * PAGE, regions.ro, regions.none, regions.shm],
    invalid: [1n, 0x1000n, BigInt(regions.rw - PAGE), BigInt(USER_END - 8), BigInt(USER_END), 0x7fffffffffffn, 1n << 53n, 1n << 63n, 0xfffffffffffff000n, 0xffffffffffffffffn],
  };

  const rng = new Rng(seed);
  const seen = new Map<string, Set<string>>();
  const okRows = new Map<string, number>();
  const failures: string[] = [];
  const fail = (msg: string): void => { if (failures.length < 20) failures.push(msg); };
  const stats0 = { ...h.dev.stats };
  let errors = 0;
  const targets: [DeviceFile, SimProcess][] = [[fresh, p2], [hsa, p2]];

  let liveHandles = new Map<number, number[]>();
  for (let i = 0; i < calls; i++) {
    if (i % 997 === 996) memoryNoise(rng, p2, regions);
    if (i % 64 === 0) liveHandles = new Map(h.dev.snapshot().files.map((x) => [x.id, [...x.handles.map((y) => y.handle), 1, 2]]));
    const [f] = rng.pick(targets);
    const { cmd, row } = randomCmd(rng, rows);
    const handles = liveHandles.get(f.id) ?? [1, 2];
    const arg = randomArg(rng, cmd, row, pool, handles);
    let r;
    try {
      r = f.ioctl(p2.pid, cmd, arg, p2);
    } catch (e) {
      fail(`call ${i}: cmd 0x${cmd.toString(16)} threw ${String(e)}`);
      continue;
    }
    const where = `call ${i} cmd 0x${cmd.toString(16)} (${row?.name ?? 'no row'}) arg ${Buffer.from(arg).toString('hex').slice(0, 160)}`;
    const type = (cmd >>> 8) & 0xff;
    if (isErr(r.result)) {
      errors++;
      if (typeof r.result.code !== 'string' || !(r.result.errno >= 1 && r.result.errno <= 4095)) fail(`${where}: bad Errno ${JSON.stringify(r.result)}`);
    } else if (!Number.isInteger(r.result) || r.result < 0) fail(`${where}: bad result ${String(r.result)}`);
    // Dispatcher-level outcomes (docs/semantics.md §2): wrong type → ENOTTY; no row → EINVAL/EACCES/EOPNOTSUPP; nothing copied back.
    if (type !== DRM_TYPE) {
      if (!isErr(r.result) || r.result.code !== 'ENOTTY') fail(`${where}: type 0x${type.toString(16)} → ${String(r.result)}, want ENOTTY`);
      if (r.out.length) fail(`${where}: ENOTTY copied ${r.out.length} bytes back`);
      continue;
    }
    if (!row) {
      if (!isErr(r.result) || !['EINVAL', 'EACCES', 'EOPNOTSUPP'].includes(r.result.code)) fail(`${where}: unknown nr → ${String(r.result)}`);
      if (r.out.length) fail(`${where}: unknown nr copied ${r.out.length} bytes back`);
      continue;
    }
    // A row: out = the caller's _IOC_SIZE iff both cmds have IOC_OUT, copied back even when the handler failed.
    const wantOut = row.renderAllow && ((cmd & cmdOf(row) & IOC_OUT) >>> 0) !== 0 ? (cmd >>> 16) & 0x3fff : 0;
    if (r.out.length !== wantOut) fail(`${where}: out ${r.out.length} bytes, want ${wantOut}`);
    if (!isErr(r.result)) okRows.set(row.name, (okRows.get(row.name) ?? 0) + 1);
    if (isErr(r.result)) {
      let s = seen.get(row.name);
      if (!s) seen.set(row.name, (s = new Set()));
      s.add(r.result.code);
    }
  }

  // Stats and counts.
  const st = h.dev.stats;
  t.is(st.ioctls - stats0.ioctls, calls, 'stats.ioctls counts every call on an open file');
  t.is(st.errors - stats0.errors, errors, 'stats.errors counts every Errno result');
  t.deepEqual(consistency(h), [], 'counts agree with the snapshot and the host');

  // The bystander file is untouched, and the host saw nothing about its resources or context.
  t.deepEqual(fileView(h.dev.snapshot(), f1.id), before, 'the other process\'s file is unchanged');
  const leaked = h.host.log.slice(hostMark).filter((c) => ('resId' in c && f1Res.has(c.resId as number)) || ('ctxId' in c && c.ctxId === f1Ctx && c.cmd !== 'RESOURCE_CREATE_BLOB'));
  t.deepEqual(leaked.map((c) => c.cmd), [], 'no host command touched the other file\'s resources or context');

  // Errnos per row ⊆ the row's documented list (+ EFAULT where the row reads user pointers).
  const wrongRows: string[] = [];
  for (const row of rows as IoctlRow[]) {
    const allowed = new Set(row.errnos.map((e) => e.code));
    if (row.pointers) allowed.add(EFAULT_CODE);
    if (KNOWN_BUGS.some((k) => k.row === row.name)) allowed.add('EIO'); // the exception itself is checked against KNOWN_BUGS below
    const extra = [...(seen.get(row.name) ?? [])].filter((c) => !allowed.has(c));
    if (extra.length) wrongRows.push(`${row.name}: returned ${extra.join(', ')}, row lists [${[...allowed].join(', ')}]`);
  }
  t.log(`uapi ${uapi}, profile ${profile}, seed ${seed}; ${calls} calls, ${errors} errnos; ${Date.now() - t0} ms`);
  t.log('successes per row:', Object.fromEntries(okRows));
  t.log('errnos seen per row:', Object.fromEntries([...seen].map(([k, v]) => [k, [...v].sort().join(' ')])));
  // One line per distinct handler exception: row, error (numbers masked), first core frame.
  const bugs = [...new Set(logs.filter((l) => l.startsWith('BUG')).map((l) => {
    const lines = l.split('\n');
    const frame = lines.find((x) => /core\//.test(x) && !/dispatch|device/.test(x)) ?? '';
    return `${lines[0].replace(/\d{4,}/g, 'N')} ${frame.trim()}`;
  }))];
  t.deepEqual(bugs.filter((b) => !KNOWN_BUGS.some((k) => k.signature.test(b))), [], `seed ${seed}: handler exceptions (EIO)`);
  t.deepEqual(failures, [], `seed ${seed}: dispatch results`);
  t.deepEqual(wrongRows, [], `seed ${seed}: rows whose errno list is wrong`);

  // Closing everything returns every count to zero and releases both clients once.
  fresh.close(); hsa.close(); f1.close();
  t.deepEqual(h.dev.counts(), { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0, queued: 0, contexts: 0, blobMemory: 0, blobMemoryBytes: 0, fences: 0 });
  t.is(h.host.liveResources(), 0);
  t.deepEqual([h.released.get(p1.pid), h.released.get(p2.pid)], [1, 1]);
}

test(`dispatch fuzz (hsakmt profile): ${CALLS} random ioctls → a result or an Errno, the other file untouched, errnos ⊆ each row's list`, (t) => {
  fuzz(t, 'hsakmt', CALLS, SEED);
});

test(`dispatch fuzz (virgl and 2d profiles): ${CALLS / 4} calls each, ENOSYS/EINVAL paths of devices without blob or capsets`, (t) => {
  fuzz(t, 'virgl', CALLS / 4, SEED + 1);
  fuzz(t, '2d', CALLS / 4, SEED + 2);
});

test(`dispatch fuzz under every uapi revision (hsakmt profile): ${CALLS / 8} calls each, create_blob in each revision's struct`, (t) => {
  const all: Uapi[] = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'mainline', 'libhsakmt-72'];
  all.forEach((u, i) => fuzz(t, 'hsakmt', CALLS / 8, SEED + 3 + i, u));
});

// ---- Core bugs this fuzzer found (fixed); their minimal repros stay as regression tests. ----------------------

test('fixed bug 1: EXECBUFFER with num_bo_handles ≥ 2^30 → ENOMEM (kvmalloc_array), not a handler exception', (t) => {
  const logs: string[] = [];
  const h = new Harness({ log: (m) => logs.push(m) });
  const p = h.proc();
  const f = h.open(p);
  const handles = p.mmap(PAGE);
  // drm_virtgpu_execbuffer: flags 0 @0, size 0 @4, command @8, bo_handles @16, num_bo_handles @24
  const r = h.ioctl(f, p, B.VIRTGPU_EXECBUFFER, new B.W(64).u64(16, handles).u32(24, 0x40000001).b);
  t.not(r.ret, 'EIO', logs.find((l) => l.startsWith('BUG'))?.split('\n')[0]);
  t.true(['ENOMEM', 'EFAULT'].includes(String(r.ret)));
});

test('fixed bug 2: userptr CREATE_BLOB over ≥ 2^32 pages (16 TiB) → ENOMEM (v1: every pin failure), not a handler exception', (t) => {
  const logs: string[] = [];
  const h = new Harness({ log: (m) => logs.push(m) });
  const p = h.proc();
  const f = h.open(p);
  ok(h.initHsakmt(f, p), 'CONTEXT_INIT');
  const low = p.mmap(PAGE, PROT_RW, { fixed: 0x10000 }); // low, so userptr + size stays below 0x7ffffffff000
  const r = h.create(f, p, low, 2 ** 45);
  t.is(r.ret, 'ENOMEM', logs.find((l) => l.startsWith('BUG'))?.split('\n')[0]);
});

/** Occasional memory changes in the fuzzing process, so the notifier and worker paths run between calls. */
function memoryNoise(rng: Rng, p: SimProcess, r: { rw: number; shm: number }): void {
  const base = rng.chance(0.7) ? r.rw : r.shm;
  const n = base === r.rw ? 16 : 4;
  const i = rng.int(n), len = (1 + rng.int(n - i)) * PAGE, a = base + i * PAGE;
  switch (rng.int(5)) {
    case 0: p.munmap(a, len); break;
    case 1: p.madvise(a, len, rng.chance(0.5) ? 'DONTNEED' : 'FREE'); break;
    case 2: p.mprotect(a, len, rng.chance(0.5) ? PROT_R : PROT_RW); break;
    case 3: p.mmap(len, PROT_RW, { fixed: a, shared: base === r.shm }); break;
    default: p.touch(a, len); break;
  }
}
