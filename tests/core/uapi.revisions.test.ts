// Every uAPI revision through the uAPI (docs/uapi-revisions.md): the create_blob struct each revision reads, what
// selects the userptr path, GETPARAM 9, flag and hint masks, 7.2's blob rules, the pin errno, dedup, the flags on the
// host's wire command, and the collisions of one ioctl number between revisions. Every expected value is written
// here by hand from the revision table, never read from core's tables.
import test from 'ava';
import { cmdOf, PROFILES, type TraceEvent } from '../../core';
import { PROT_NONE, type SimProcess } from '../../core/testing';
import { Harness, BLOB_GUEST, BLOB_HOST3D, BLOB_HOST3D_GUEST, USE_MAPPABLE, USE_USERPTR, USERPTR_RDONLY } from '../helpers/core-harness';
import * as B from '../helpers/bytes';

const PAGE = 4096;
const USE_SVM = 0x20;
const HINT_DEFER = 0x1, HINT_USERPTR = 0x2, HINT_RDONLY = 0x4;
const ALL = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'mainline', 'libhsakmt-72'] as const;
type Uapi = (typeof ALL)[number];

/** The create_blob struct size each revision's kernel declares (the row's _IOC size). */
const STRUCT_SIZE: Record<Uapi, number> = { v1: 64, v2: 64, v3: 56, v4: 56, v5: 56, v6: 64, mainline: 56, 'libhsakmt-72': 72 };
/** The _IOC number of that struct: _IOWR('d', 0x4a, size). */
const CREATE_BLOB_CMD: Record<Uapi, number> = { v1: 0xc040644a, v2: 0xc040644a, v3: 0xc038644a, v4: 0xc038644a, v5: 0xc038644a, v6: 0xc040644a, mainline: 0xc038644a, 'libhsakmt-72': 0xc048644a };

function ready(uapi: Uapi, opts: Record<string, unknown> = {}) {
  const events: TraceEvent[] = [];
  const h = new Harness({ uapi, trace: (ev: TraceEvent) => events.push(ev), ...opts } as never);
  const p = h.proc();
  const f = h.open(p);
  return { h, p, f, events };
}
const hsakmt = (uapi: Uapi, opts: Record<string, unknown> = {}) => {
  const r = ready(uapi, opts);
  if (r.h.initHsakmt(r.f, r.p) !== 0) throw new Error('CONTEXT_INIT');
  return r;
};
function getparam9(h: Harness, f: ReturnType<Harness['open']>, p: SimProcess): number | string {
  const at = p.mmap(PAGE);
  const r = h.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(9, at));
  return r.ret === 0 ? new DataView((p.read(at, 4) as Uint8Array).buffer).getInt32(0, true) : r.ret;
}
/** The kind of the BO a handle names (snapshot), and the host's RESOURCE_CREATE_BLOB for it. */
function bo(h: Harness, f: ReturnType<Harness['open']>, handle: number) {
  const s = h.dev.snapshot().files.find((x) => x.id === f.id)!.handles.find((x) => x.handle === handle);
  const cmd = s && h.host.log.find((c) => c.cmd === 'RESOURCE_CREATE_BLOB' && c.resId === s.resId) as { blobFlags: number; entries: unknown[] } | undefined;
  return { kind: s?.kind, hints: s?.blobHints, wireFlags: cmd?.blobFlags };
}
const out = (b: Uint8Array) => new B.R(b);
/** What the kernel read from the create's bytes: the trace's decoded `in` of the last create_blob. */
function lastRead(events: TraceEvent[]): Record<string, unknown> {
  const ev = events.filter((e) => e.t === 'ioctl' && e.name === 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB').pop() as { in: Record<string, unknown> };
  return ev.in;
}

test('layout: each revision\'s create_blob row has its struct\'s size and _IOC number', (t) => {
  for (const u of ALL) {
    const { h } = ready(u);
    const row = h.dev.rows().find((r) => r.nr === 0x4a)!;
    t.is(row.layout.size, STRUCT_SIZE[u], u);
    t.is(cmdOf(row), CREATE_BLOB_CMD[u], u);
    t.is(h.dev.snapshot().uapi, u);
  }
});

test('layout: what each revision reads from bytes 48–71 of the same 72 bytes (the trace shows the kernel\'s reading)', (t) => {
  // 72 bytes: @48 = 0x1111_2222_3333_4444 (u64), @56 = 0x5555, @64 = 0x6666; a GUEST blob with a bad flag so nothing is created.
  const bytes = new B.W(72).u32(0, BLOB_GUEST).u32(4, 0x80).u64(16, PAGE).u64(48, 0x1111222233334444n).u64(56, 0x5555).u64(64, 0x6666).b;
  const want: Record<Uapi, Record<string, unknown>> = {
    v1: { userptr: '0x1111222233334444', offset: '0x5555' },
    v2: { userptr: '0x1111222233334444', offset: '0x5555' },
    v3: { userptr: '0x1111222233334444' },
    v4: { userptr: '0x1111222233334444' },
    v5: { userptr: '0x1111222233334444' },
    v6: { blob_hints: 0x33334444, pad2: 0x11112222, userptr: '0x5555' },
    mainline: { blob_hints: 0x33334444, pad2: 0x11112222 },
    'libhsakmt-72': { userptr: '0x1111222233334444', svm: '0x5555', offset: '0x6666' },
  };
  for (const u of ALL) {
    const { h, p, f, events } = ready(u);
    t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_72, bytes).ret, 'EINVAL', u);
    const read = lastRead(events);
    const tail = Object.fromEntries(Object.entries(read).filter(([k]) => ['blob_hints', 'pad2', 'userptr', 'svm', 'offset'].includes(k)));
    t.deepEqual(tail, want[u], u);
  }
});

test('the trace starts with the device event: uapi, mode, profile, posted', (t) => {
  t.deepEqual(ready('v6').events[0], { t: 'device', uapi: 'v6', mode: 'pin', profile: 'hsakmt', posted: true });
  t.deepEqual(ready('libhsakmt-72').events[0], { t: 'device', uapi: 'libhsakmt-72', mode: 'notifier', profile: 'hsakmt', posted: false });
  t.deepEqual(ready('v1', { mode: 'pin' }).events[0], { t: 'device', uapi: 'v1', mode: 'pin', profile: 'hsakmt', posted: true });
});

test('GETPARAM 9 per revision: EINVAL, v3\'s RESOURCE_USERPTR, or 7.2\'s BLOB_ALIGNMENT (ENOENT without one)', (t) => {
  const want: Record<Uapi, number | string> = { v1: 'EINVAL', v2: 'EINVAL', v3: 1, v4: 'EINVAL', v5: 'EINVAL', v6: 4096, mainline: 4096, 'libhsakmt-72': 'EINVAL' };
  for (const u of ALL) {
    const { h, p, f } = ready(u);
    t.is(getparam9(h, f, p), want[u], u);
  }
  const noAlign = { ...PROFILES.hsakmt, name: 'no-alignment', blobAlignment: undefined };
  for (const u of ['mainline', 'v6'] as const) {
    const { h, p, f } = ready(u, { profile: noAlign });
    t.is(getparam9(h, f, p), 'ENOENT', `${u}, a device that declares no alignment`);
  }
  const { h, p, f } = ready('v3', { profile: 'virgl' });
  t.is(getparam9(h, f, p), 0, 'v3 on a device without userptrs');
});

// ---- the userptr path ----

/** A create in the revision's own struct: v1-style fields for the 64/56-byte userptr layouts, hints for 7.2 ones. */
function create(u: Uapi, h: Harness, f: ReturnType<Harness['open']>, p: SimProcess, a: B.BlobArgs & B.TailArgs) {
  const args = { blobId: a.blobMem === BLOB_GUEST ? 0 : 0x1234, ...a };
  let bytes: Uint8Array;
  switch (STRUCT_SIZE[u] === 72 ? '72' : u === 'v6' ? 'v6' : u === 'mainline' ? 'hints' : String(STRUCT_SIZE[u])) {
    case '72': bytes = B.createBlob72(args); break;
    case 'v6': bytes = B.createBlobV6(args); break;
    case 'hints': bytes = B.createBlobHints(args); break;
    default: bytes = B.createBlob({ ...args, offset: args.offset ?? 0x5a5a }, STRUCT_SIZE[u]);
  }
  const r = h.ioctl(f, p, B.IOWR(0x4a, bytes.length), bytes);
  return { ret: r.ret, handle: out(r.out).u32(8), out: r.out };
}

test('path selection v1–v4: a guest blob with userptr ≠ 0 is a userptr, the flag does not select, HOST3D ignores the address', (t) => {
  for (const u of ['v1', 'v2', 'v3', 'v4'] as const) {
    const { h, p, f } = hsakmt(u);
    const m = p.mmap(8 * PAGE);
    const a = create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 * PAGE, userptr: m });
    t.is(a.ret, 0, u);
    t.is(bo(h, f, a.handle).kind, 'userptr', `${u}: no flag, still a userptr`);
    const g = create(u, h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: PAGE, userptr: m + 4 * PAGE });
    t.is(bo(h, f, g.handle).kind, 'userptr', `${u}: GUEST`);
    const host = create(u, h, f, p, { blobMem: BLOB_HOST3D, flags: USE_USERPTR, size: PAGE, userptr: m });
    t.is(host.ret, 0, u);
    t.is(bo(h, f, host.handle).kind, 'host3d', `${u}: HOST3D ignores userptr`);
    t.is(create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE, userptr: 0 }).ret, 'EINVAL', `${u}: USE_USERPTR with userptr 0`);
  }
});

test('path selection v5: USE_USERPTR if and only if userptr ≠ 0; USERPTR_RDONLY needs the flag', (t) => {
  const { h, p, f } = hsakmt('v5');
  const m = p.mmap(4 * PAGE);
  t.is(create('v5', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, userptr: m }).ret, 'EINVAL', 'pointer without the flag');
  t.is(create('v5', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE, userptr: 0 }).ret, 'EINVAL', 'flag without a pointer');
  t.is(create('v5', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USERPTR_RDONLY, size: PAGE, userptr: 0 }).ret, 'EINVAL', 'RDONLY without the flag');
  const a = create('v5', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY, size: PAGE, userptr: m });
  t.is(a.ret, 0);
  t.is(bo(h, f, a.handle).kind, 'userptr');
});

test('path selection v6: HINT_USERPTR selects; userptr without it, the USE_USERPTR flag, unaligned ranges → EINVAL; E2BIG', (t) => {
  const { h, p, f } = hsakmt('v6');
  const m = p.mmap(4 * PAGE);
  const a = create('v6', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 * PAGE, hints: HINT_USERPTR, userptr: m });
  t.is(a.ret, 0);
  t.is(bo(h, f, a.handle).kind, 'userptr');
  const cases: [string, B.BlobArgs & B.TailArgs, string][] = [
    ['userptr without the hint', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, userptr: m }, 'EINVAL'],
    ['USE_USERPTR is not in v6\'s flag mask', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE, hints: HINT_USERPTR, userptr: m }, 'EINVAL'],
    ['RDONLY hint without HINT_USERPTR', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, hints: HINT_RDONLY }, 'EINVAL'],
    ['HINT_USERPTR on a HOST3D blob', { blobMem: BLOB_HOST3D, flags: 0, size: PAGE, hints: HINT_USERPTR, userptr: m }, 'EINVAL'],
    ['unaligned address', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, hints: HINT_USERPTR, userptr: m + 8 }, 'EINVAL'],
    ['unaligned size', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE + 8, hints: HINT_USERPTR, userptr: m }, 'EINVAL'],
    ['address + size wraps', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 * PAGE, hints: HINT_USERPTR, userptr: 0xfffffffffffff000n }, 'EINVAL'],
    ['more than INT_MAX pages', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 ** 31 * PAGE, hints: HINT_USERPTR, userptr: 0x10000000 }, 'E2BIG'],
    ['an unknown hint bit', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, hints: 0x8 }, 'EINVAL'],
    ['pad2 ≠ 0', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, pad2: 1 }, 'EINVAL'],
  ];
  for (const [what, args, want] of cases) t.is(create('v6', h, f, p, args).ret, want, what);
  const ro = create('v6', h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: PAGE, hints: HINT_USERPTR | HINT_RDONLY, userptr: m + 2 * PAGE });
  t.is(ro.ret, 0, 'read-only userptr by hint');
  t.true(h.dev.snapshot().files[0]!.handles.find((x) => x.handle === ro.handle)!.userptr!.rdonly);
});

test('path selection mainline: no userptr — the flag, a hint or a v1-style 64-byte request get EINVAL', (t) => {
  const { h, p, f } = hsakmt('mainline');
  const m = p.mmap(4 * PAGE);
  t.is(create('mainline', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE }).ret, 'EINVAL', 'USE_USERPTR not in the mask');
  t.is(create('mainline', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, hints: HINT_USERPTR }).ret, 'EINVAL', 'HINT_USERPTR unknown to 7.2');
  // A v1 client's 64 bytes: userptr @48 is read as blob_hints (low half) and pad2 (high half of a user address: ≠ 0).
  t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_GUEST, flags: 0, size: PAGE, userptr: m })).ret, 'EINVAL');
  t.is(h.dev.counts().handles, 0);
});

test('path selection libhsakmt-72: USE_USERPTR reads userptr @48, USE_SVM reads svm @56; both, or SVM with a userptr → EINVAL', (t) => {
  const { h, p, f } = hsakmt('libhsakmt-72');
  const m = p.mmap(8 * PAGE);
  const a = create('libhsakmt-72', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE, userptr: m, svm: 0x7777000 });
  t.is(a.ret, 0);
  t.is(bo(h, f, a.handle).kind, 'userptr');
  t.is(h.dev.snapshot().files[0]!.handles.find((x) => x.handle === a.handle)!.userptr!.start, m, 'the address from @48');
  const s = create('libhsakmt-72', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_SVM, size: PAGE, svm: m + 4 * PAGE });
  t.is(s.ret, 0);
  t.is(h.dev.snapshot().files[0]!.handles.find((x) => x.handle === s.handle)!.userptr!.start, m + 4 * PAGE, 'the address from @56');
  t.is(bo(h, f, s.handle).wireFlags, USE_SVM, 'the flags as passed reach the host');
  t.is(create('libhsakmt-72', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USE_SVM, size: PAGE, userptr: m, svm: m }).ret, 'EINVAL');
  t.is(create('libhsakmt-72', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_SVM, size: PAGE, userptr: m, svm: m }).ret, 'EINVAL');
  t.is(create('libhsakmt-72', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_SVM, size: PAGE }).ret, 'EINVAL', 'SVM with svm 0');
});

test('flag masks: USERPTR_RDONLY only where the revision has it (v1, v2, v5, libhsakmt-72), USE_SVM only in libhsakmt-72', (t) => {
  const want: Record<Uapi, [number | string, number | string]> = {
    // [RDONLY userptr, USE_SVM on an ordinary GUEST blob]
    v1: [0, 'EINVAL'], v2: [0, 'EINVAL'], v3: ['EINVAL', 'EINVAL'], v4: ['EINVAL', 'EINVAL'], v5: [0, 'EINVAL'],
    v6: ['EINVAL', 'EINVAL'], mainline: ['EINVAL', 'EINVAL'], 'libhsakmt-72': [0, 'EINVAL' /* svm 0 */],
  };
  for (const u of ALL) {
    const { h, p, f } = hsakmt(u);
    const m = p.mmap(PAGE);
    const ro = create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY, size: PAGE, userptr: m });
    const svm = create(u, h, f, p, { blobMem: BLOB_GUEST, flags: USE_SVM, size: PAGE });
    t.deepEqual([ro.ret, svm.ret], want[u], u);
  }
});

test('7.2 blob rules (mainline, v6): sizes a multiple of the device\'s alignment; DEFER_MAPPING accepted and recorded', (t) => {
  for (const u of ['mainline', 'v6'] as const) {
    const { h, p, f } = hsakmt(u);
    t.is(create(u, h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: 100 }).ret, 'EINVAL', `${u}: 100 bytes, alignment 4096`);
    t.is(create(u, h, f, p, { blobMem: BLOB_HOST3D, flags: USE_MAPPABLE, size: PAGE + 2048 }).ret, 'EINVAL', `${u}: HOST3D too`);
    const d = create(u, h, f, p, { blobMem: BLOB_HOST3D, flags: USE_MAPPABLE, size: 2 * PAGE, hints: HINT_DEFER });
    t.is(d.ret, 0, u);
    t.like(bo(h, f, d.handle), { kind: 'host3d', hints: HINT_DEFER });
    t.is(create(u, h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: PAGE, pad2: 0x100 }).ret, 'EINVAL', `${u}: pad2`);
  }
  const noAlign = { ...PROFILES.hsakmt, name: 'no-alignment', blobAlignment: undefined };
  const { h, p, f } = ready('mainline', { profile: noAlign });
  t.is(create('mainline', h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: 100 }).ret, 0, 'no alignment declared: any size');
  // Revisions before 7.2 have no alignment rule.
  for (const u of ['v1', 'v3', 'v5'] as const) {
    const r = ready(u);
    t.is(create(u, r.h, r.f, r.p, { blobMem: BLOB_GUEST, flags: 0, size: 100 }).ret, 0, u);
  }
});

test('pin errno: every pin failure is ENOMEM in v1, v2 and libhsakmt-72; the pin\'s own EFAULT in v3 and later', (t) => {
  const want: Record<Uapi, string | null> = { v1: 'ENOMEM', v2: 'ENOMEM', v3: 'EFAULT', v4: 'EFAULT', v5: 'EFAULT', v6: 'EFAULT', mainline: null, 'libhsakmt-72': 'ENOMEM' };
  for (const u of ALL) {
    if (!want[u]) continue;
    const { h, p, f } = hsakmt(u);
    const hole = p.mmap(4 * PAGE);
    p.munmap(hole + PAGE, PAGE);
    const none = p.mmap(PAGE, PROT_NONE);
    const base = u === 'v6' ? { hints: HINT_USERPTR } : { flags: USE_USERPTR };
    t.is(create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 * PAGE, userptr: hole, ...base }).ret, want[u], `${u}: a hole`);
    t.is(create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE, userptr: none, ...base }).ret, want[u], `${u}: PROT_NONE`);
    t.is(h.dev.counts().pins, 0, u);
  }
});

test('dedup: +3 with offset where the struct has one (v1, v2 @56; libhsakmt-72 @64); none in v3–v6; --mode pin turns it off', (t) => {
  const rows: [Uapi, Record<string, unknown>, number | null][] = [['v1', {}, 56], ['v2', {}, 56], ['libhsakmt-72', {}, 64], ['v3', {}, null], ['v5', {}, null], ['v6', {}, null], ['v1', { mode: 'pin' }, null]];
  for (const [u, opts, at] of rows) {
    const { h, p, f } = hsakmt(u, opts);
    const m = p.mmap(8 * PAGE);
    const base = u === 'v6' ? { hints: HINT_USERPTR } : { flags: USE_USERPTR };
    const a = create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 8 * PAGE, userptr: m, ...base });
    t.is(a.ret, 0);
    const b = create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: 2 * PAGE, userptr: m + 3 * PAGE, offset: 0x5a5a, ...base });
    const label = `${u}${opts.mode ? ' --mode pin' : ''}`;
    if (at === null) {
      t.is(b.ret, 0, `${label}: a second BO`);
      t.not(b.handle, a.handle, label);
    } else {
      t.is(b.ret, 3, label);
      t.is(b.handle, a.handle, label);
      t.is(out(b.out).u64(at), BigInt(3 * PAGE), `${label}: offset @${at}`);
    }
  }
});

test('notifier: v1 deletes a userptr whose memory is unmapped; v2 (dedup, no notifier) and v3 keep it until GEM_CLOSE', (t) => {
  for (const [u, gone] of [['v1', true], ['libhsakmt-72', true], ['v2', false], ['v3', false]] as const) {
    const { h, p, f } = hsakmt(u);
    const m = p.mmap(4 * PAGE);
    const a = create(u, h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: 4 * PAGE, userptr: m });
    t.is(a.ret, 0);
    p.munmap(m, 4 * PAGE);
    h.poke(f, p);
    t.is(h.alive(f, p, a.handle), !gone, u);
  }
});

test('host wire flags: the userptr flags reach the host in v1–v5 (RDONLY where the revision has it), none in v6', (t) => {
  const rows: [Uapi, B.BlobArgs & B.TailArgs, number][] = [
    ['v1', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY | USE_MAPPABLE, size: PAGE }, USE_USERPTR | USERPTR_RDONLY | USE_MAPPABLE],
    ['v2', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE }, USE_USERPTR],
    ['v3', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE }, USE_USERPTR],
    ['v4', { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: PAGE }, 0],
    ['v5', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY, size: PAGE }, USE_USERPTR | USERPTR_RDONLY],
    ['v6', { blobMem: BLOB_HOST3D_GUEST, flags: USE_MAPPABLE, size: PAGE, hints: HINT_USERPTR | HINT_RDONLY }, USE_MAPPABLE],
    ['libhsakmt-72', { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY, size: PAGE }, USE_USERPTR | USERPTR_RDONLY],
  ];
  for (const [u, args, wire] of rows) {
    const { h, p, f } = hsakmt(u);
    const a = create(u, h, f, p, { ...args, userptr: p.mmap(PAGE) });
    t.is(a.ret, 0, u);
    t.like(bo(h, f, a.handle), { kind: 'userptr', wireFlags: wire }, u);
  }
});

test('collision: a 7.2 client\'s 56-byte GUEST blob with blob_hints = DEFER_MAPPING is a hint under mainline/v6, userptr = 1 under v1 (ENOMEM) and v3 (EFAULT)', (t) => {
  const bytes = B.createBlobHints({ blobMem: BLOB_GUEST, flags: 0, size: PAGE, hints: HINT_DEFER });
  t.is(bytes.length, 56);
  const want: [Uapi, number | string, Record<string, unknown>][] = [
    ['mainline', 0, { blob_hints: HINT_DEFER, pad2: 0 }],
    ['v6', 0, { blob_hints: HINT_DEFER, pad2: 0, userptr: '0x0' }],
    ['v1', 'ENOMEM', { userptr: '0x1', offset: '0x0' }],
    ['v3', 'EFAULT', { userptr: '0x1' }],
  ];
  for (const [u, ret, read] of want) {
    const { h, p, f, events } = hsakmt(u);
    const r = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_56, bytes);
    t.is(r.ret, ret, u);
    t.like(lastRead(events), read, u);
    if (ret === 0) t.like(bo(h, f, out(r.out).u32(8)), { kind: 'guest', hints: HINT_DEFER }, u);
    else t.is(h.dev.counts().handles, 0, u);
  }
});

test('collision: GETPARAM 9 asked by a 7.2 client for the blob alignment — a v3 kernel answers 1, a v1 kernel EINVAL', (t) => {
  const got = (['mainline', 'v3', 'v1'] as const).map((u) => { const { h, p, f } = ready(u); return getparam9(h, f, p); });
  t.deepEqual(got, [4096, 1, 'EINVAL']);
});

// ---- v6: pins counted against RLIMIT_MEMLOCK (the kernel's can_do_mlock and mm->pinned_vm) ----

function v6create(h: Harness, f: ReturnType<Harness['open']>, p: SimProcess, addr: number | bigint, bytes: number) {
  return create('v6', h, f, p, { blobMem: BLOB_HOST3D_GUEST, flags: 0, size: bytes, hints: HINT_USERPTR, userptr: addr });
}
const pinnedVm = (h: Harness, p: SimProcess): number | undefined => h.dev.snapshot().clients.find((c) => c.pid === p.pid)?.pinnedVm;

test('v6: no RLIMIT_MEMLOCK and no CAP_IPC_LOCK → EPERM (before E2BIG); CAP_IPC_LOCK alone is enough; v1 does not look', (t) => {
  const { h, p, f } = hsakmt('v6');
  const m = p.mmap(4 * PAGE);
  p.memlock = { limitBytes: 0, capIpcLock: false };
  t.is(v6create(h, f, p, m, PAGE).ret, 'EPERM');
  t.is(v6create(h, f, p, 0x10000000, 2 ** 31 * PAGE).ret, 'EPERM', 'EPERM comes before E2BIG');
  t.is(create('v6', h, f, p, { blobMem: BLOB_GUEST, flags: 0, size: PAGE }).ret, 0, 'an ordinary blob needs no lock');
  p.memlock = { limitBytes: 4096, capIpcLock: false };
  t.is(v6create(h, f, p, 0x10000000, 2 ** 31 * PAGE).ret, 'E2BIG');
  p.memlock = { limitBytes: 0, capIpcLock: true };
  const a = v6create(h, f, p, m, 4 * PAGE);
  t.is(a.ret, 0, 'CAP_IPC_LOCK: no limit');
  t.is(pinnedVm(h, p), 4, 'still accounted');
  const v1 = hsakmt('v1');
  v1.p.memlock = { limitBytes: 0, capIpcLock: false };
  t.is(create('v1', v1.h, v1.f, v1.p, { blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: PAGE, userptr: v1.p.mmap(PAGE) }).ret, 0, 'v1 has no memlock rule');
  t.is(pinnedVm(v1.h, v1.p), 0);
});

test('v6: pinned pages over RLIMIT_MEMLOCK → ENOMEM, counted per process across files, released at unref and close', (t) => {
  const { h, p, f } = hsakmt('v6');
  const f2 = h.open(p);
  t.is(h.initHsakmt(f2, p), 0);
  const m = p.mmap(32 * PAGE);
  p.memlock = { limitBytes: 16 * PAGE, capIpcLock: false };
  const a = v6create(h, f, p, m, 8 * PAGE);
  t.is(a.ret, 0);
  t.is(v6create(h, f2, p, m + 8 * PAGE, 8 * PAGE).ret, 0, 'the second file counts in the same process');
  t.is(pinnedVm(h, p), 16);
  t.is(v6create(h, f, p, m + 16 * PAGE, PAGE).ret, 'ENOMEM', 'one page over the limit');
  t.is(h.close(f, p, a.handle), 0);
  t.is(pinnedVm(h, p), 8, 'released at unref');
  t.is(v6create(h, f, p, m + 16 * PAGE, 8 * PAGE).ret, 0);
  // Another process has its own count.
  const q = h.proc();
  const fq = h.open(q);
  t.is(h.initHsakmt(fq, q), 0);
  q.memlock = { limitBytes: 8 * PAGE, capIpcLock: false };
  t.is(v6create(h, fq, q, q.mmap(8 * PAGE), 8 * PAGE).ret, 0);
  t.is(pinnedVm(h, q), 8);
  f2.close();
  t.is(pinnedVm(h, p), 8);
  f.close();
  fq.close();
  t.like(h.dev.counts(), { handles: 0, pins: 0, clients: 0 });
});
