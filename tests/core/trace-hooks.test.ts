// What core puts in a trace for replay (each ioctl's bytes and pointer copies, the mappings a userptr create saw)
// and its one fault hook (an ioctl failed after its entry, events queued for the client ahead of its watcher's).
import test from 'ava';
import { EAGAIN, type TraceEvent } from '../../core';
import { Harness, USE_USERPTR } from '../helpers/core-harness';
import * as B from '../helpers/bytes';

type Ev = Record<string, unknown>;

function traced(opts: ConstructorParameters<typeof Harness>[0] = {}) {
  const events: Ev[] = [];
  const h = new Harness({ trace: (e: TraceEvent) => events.push(e as unknown as Ev), ...opts });
  const p = h.proc();
  const f = h.open(p);
  return { h, p, f, events };
}

test('a traced ioctl carries its bytes and every copy through its pointers; a userptr create, the mappings it saw', (t) => {
  const { h, p, f, events } = traced();
  t.is(h.initHsakmt(f, p), 0);
  const init = events.find((e) => e.t === 'ioctl' && e.name === 'DRM_IOCTL_VIRTGPU_CONTEXT_INIT')!;
  t.is((init.raw as Uint8Array).length, 16);
  t.like((init.reads as Ev[])[0], { len: 16 });
  const at = p.mmap(4096);
  h.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(1, at));
  const gp = events.filter((e) => e.t === 'ioctl' && e.name === 'DRM_IOCTL_VIRTGPU_GETPARAM').at(-1)!;
  t.like((gp.writes as Ev[])[0], { addr: at, len: 4 });
  const mem = p.mmap(4 * 4096);
  t.is(h.create(f, p, mem, 4 * 4096).ret, 0);
  const u = events.find((e) => e.t === 'userptr')!;
  t.deepEqual((u.maps as Ev[]).map((m) => [m.start, m.end, m.write, m.backing]), [[mem, mem + 4 * 4096, true, 'anon']]);
});

test('a create past the user address space is traced without mappings and answers as it does untraced', (t) => {
  const bogus = 0xffffffffffff0000n;
  const results: (number | string)[] = [];
  for (const trace of [true, false]) {
    const events: Ev[] = [];
    const h = new Harness(trace ? { trace: (e: TraceEvent) => events.push(e as unknown as Ev) } : {});
    const p = h.proc();
    const f = h.open(p);
    h.initHsakmt(f, p);
    results.push(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: 3, flags: USE_USERPTR, size: 0x20000, userptr: bogus, blobId: 1 })).ret);
    if (trace) t.false('maps' in (events.find((e) => e.t === 'userptr') ?? {}));
  }
  t.is(results[0], results[1]);
  t.not(results[0], 'EIO');
});

test('the fault hook: events queued for the caller are applied at the entry, then the ioctl fails unrun', (t) => {
  let mem = 0;
  let calls = 0;
  const { h, p, f, events } = traced({
    faults: { ioctl: (at) => (at.name === 'DRM_IOCTL_VIRTGPU_RESOURCE_INFO' && ++calls === 1 ? { events: [{ event: 'UNMAP', start: mem, end: mem + 2 * 4096, note: 'fault test' }], fail: EAGAIN } : undefined) },
  });
  h.initHsakmt(f, p);
  mem = p.mmap(4 * 4096);
  const bo = h.create(f, p, mem, 4 * 4096);
  t.is(bo.ret, 0);
  t.is(h.info(f, p, bo.handle).ret, 'EAGAIN', 'failed by the rule');
  t.like(events.filter((e) => e.t === 'ioctl').at(-1), { name: 'DRM_IOCTL_VIRTGPU_RESOURCE_INFO', result: 'EAGAIN', fault: true });
  t.true(events.some((e) => e.t === 'notifier' && e.note === 'fault test'), 'the queued event was drained at that entry');
  t.like(h.userptrOf(f, bo.handle), { start: mem + 2 * 4096 }, 'and split the BO before the ioctl failed');
  t.is(h.info(f, p, bo.handle).ret, 0, 'the next call runs');
});
