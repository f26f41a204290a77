// `replay TRACE`: the recorded session re-issued, in seq order, against a fresh in-process device with simulated
// memory (the header's uapi revision, mode and profile), and every difference reported: an ioctl's result, its out
// fields, what it wrote through its embedded pointers, the host commands in order.
// Inputs come from the trace (docs/trace-format.md): each ioctl's bytes (`raw`) and the bytes its handler read
// through embedded pointers (`reads`, served back); the memory events each drain applied (the `notifier` records
// without a file), queued for the client at the same point and mirrored on the simulated memory (munmap, madvise) so
// that pins and evict checks see what the client's memory was; the ranges of userptr creates mapped in the simulated
// process when the recording's create found them mapped. Faults recorded are replayed as recorded.
import { createDevice, errnoOf, isErr, RecordingHost, type Device, type DeviceFile, type HostCommand, type Mapping, type NotifierEvent, type UserCopy } from '../../core';
import { EFAULT } from '../../core/errno';
import { SimMachine, SimObject, SimProcess, simProvider } from '../../core/testing';
import { constants } from 'os';
import { FaultEngine, parseFaults } from '../fault/rules';
import type { Trace } from './reader';
import type { TraceRecord } from './schema';

const PAGE = 4096;

export interface Difference { seq: number; what: string; recorded: unknown; replayed: unknown }
export interface ReplayResult { ioctls: number; hostCommands: number; differences: Difference[] }

type Rec = Record<string, unknown> & { t: string; seq: number; tid?: number };
type Io = { addr: number; len: number; data?: string; errno?: string };

const hexBytes = (h: unknown): Uint8Array => (typeof h === 'string' ? new Uint8Array(Buffer.from(h, 'hex')) : new Uint8Array(0));
const errnoNamed = (code: string) => errnoOf((constants.errno as Record<string, number>)[code] ?? 0);

/** A host command as compared: no frame addresses (the simulated memory has its own frames) and no host seq. */
function hostKey(c: Record<string, unknown>): string {
  const { seq, entries, ...rest } = c;
  void seq;
  const e = entries as { length: number }[] | undefined;
  return JSON.stringify({ ...rest, ...(e ? { entryBytes: e.reduce((n, x) => n + x.length, 0) } : {}) }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

/** The embedded-pointer reads of one recorded ioctl, served in order; an address never read in the recording faults. */
function servedUser(reads: Io[], recordedWrites: Io[], writes: Io[]): UserCopy {
  const queue = [...reads];
  const failed = recordedWrites.filter((w) => w.errno);
  return {
    read(addr, len) {
      const i = queue.findIndex((r) => r.addr === addr && r.len === len);
      if (i < 0) return EFAULT;
      const r = queue.splice(i, 1)[0]!;
      return r.errno ? errnoNamed(r.errno) : hexBytes(r.data);
    },
    write(addr, data) {
      // A write the recording's client memory refused is refused again (the pointer was bad then).
      const i = failed.findIndex((w) => w.addr === addr && w.len === data.length);
      if (i >= 0) { const w = failed.splice(i, 1)[0]!; writes.push({ addr, len: data.length, errno: w.errno }); return errnoNamed(w.errno!); }
      writes.push({ addr, len: data.length, data: Buffer.from(data).toString('hex') });
      return undefined;
    },
  };
}

/** `uapi`: replay under another revision than the recorded one (what would change: `replay --uapi`). */
export function replay(tr: Trace, opts: { uapi?: string } = {}): ReplayResult {
  const h = tr.header;
  if (!h.uapi) throw new Error('the trace has no device (its server never started): nothing to replay');
  const machine = new SimMachine();
  const procs = new Map<number, SimProcess>();
  const replayedHost: string[] = [];
  const host = new RecordingHost(16);
  host.onCommand = (cmd: HostCommand) => replayedHost.push(hostKey(cmd as unknown as Record<string, unknown>));
  // Host refusals are replayed by the same rules and seed; ioctl faults from the records themselves.
  const hostRules = (h.options.faults ?? []).filter((r) => r.startsWith('host:') || r.startsWith('seed='));
  const faultHost = hostRules.length ? new FaultEngine(parseFaults(hostRules)).wrapHost(host) : host;
  const device: Device = createDevice({ uapi: opts.uapi ?? h.uapi, mode: (h.options.mode as 'notifier' | 'pin' | undefined) ?? (h.mode === 'pin' ? 'pin' : undefined), profile: h.profile ?? undefined, clients: simProvider(machine, procs), host: faultHost });
  const files = new Map<number, DeviceFile>();
  const differences: Difference[] = [];
  const differ = (seq: number, what: string, recorded: unknown, replayed: unknown): void => { differences.push({ seq, what, recorded, replayed }); };
  const recordedHost: { seq: number; key: string }[] = [];
  /** Events drained at a request's entry (a tid) wait for that client's next ioctl; a watcher's wake-up's run now. */
  const pending = new Map<number, NotifierEvent[]>();
  let wake: { pid: number; evs: NotifierEvent[] } | null = null;
  const flushWake = (): void => {
    if (!wake) return;
    const c = device.clients.get(wake.pid);
    if (c) { c.inject(wake.evs); device.service(wake.pid); }
    wake = null;
  };
  const proc = (pid: number): SimProcess => {
    let p = procs.get(pid);
    if (!p) { p = new SimProcess(machine, pid, 'uffd'); procs.set(pid, p); }
    return p;
  };
  /**
   * Make [start, end) of the simulated process what the recording's create saw (its `maps`; without them: mapped,
   * anonymous, read-write): a page whose mapping differs is mapped afresh, one that was a hole is unmapped, the rest
   * (pages an earlier BO pinned) is kept.
   */
  const ensureMapped = (pid: number, start: number, end: number, maps?: Mapping[]): void => {
    const p = proc(pid);
    const want = (a: number): Mapping | null => maps ? maps.find((m) => m.start <= a && a < m.end) ?? null : { start, end, read: true, write: true, exec: false, shared: false, backing: 'anon' };
    const same = (a: number): boolean => {
      const w = want(a), v = p.vmaAt(a);
      if (!w || !v) return !w && !v;
      const special = w.backing === 'special';
      return special ? !v.prot.read && !v.prot.write && !v.prot.exec
        : v.prot.read === w.read && v.prot.write === w.write && v.prot.exec === w.exec && v.shared === w.shared && v.backing === w.backing;
    };
    for (let a = start; a < end;) {
      if (same(a)) { a += PAGE; continue; }
      const w = want(a);
      let b = a + PAGE;
      while (b < end && !same(b) && want(b) === w) b += PAGE;
      if (!w) p.munmap(a, b - a);
      // A special mapping (VM_IO/PFNMAP) cannot be simulated: PROT_NONE is refused by the pin the same way.
      else if (w.backing === 'special') p.mmap(b - a, { read: false, write: false, exec: false }, { fixed: a });
      else p.mmap(b - a, { read: w.read, write: w.write, exec: w.exec }, { fixed: a, shared: w.shared, obj: w.backing === 'anon' ? undefined : new SimObject(w.backing === 'file' ? 'file' : 'shmem') });
      a = b;
    }
    p.events.drain(); // the simulated watcher's own events: the recorded ones are applied instead
  };
  /** What the client did to its memory, on the simulated process (its own events dropped, see ensureMapped). */
  const mirror = (pid: number, ev: NotifierEvent): void => {
    if (ev.note?.startsWith('fault ')) return; // a forced invalidation: the memory did not change
    const p = proc(pid);
    const len = ev.end - ev.start;
    if (ev.event === 'UNMAP') p.munmap(ev.start, len);
    else if (ev.event === 'CLEAR') { if (p.vmaAt(ev.start)) p.madvise(ev.start, len, ev.removed === false ? 'FREE' : 'DONTNEED'); }
    p.events.drain();
  };
  let lastUserptr: Rec | null = null;
  let ioctls = 0;
  for (const r0 of tr.records as unknown as Rec[]) {
    const r = r0;
    if (wake && !(r.t === 'notifier' && r.file === undefined && r.tid === undefined && r.pid === wake.pid)) flushWake();
    switch (r.t) {
      case 'file': {
        if (r.op === 'open') {
          const f = device.open(r.pid as number);
          if (f.id !== r.file) differ(r.seq, 'file id at open', r.file, f.id);
          files.set(r.file as number, f);
        } else files.get(r.file as number)?.close();
        break;
      }
      case 'notifier': {
        if (r.file !== undefined) break; // an application of an event: replayed by the device itself
        const pid = r.pid as number;
        const ev: NotifierEvent = { event: r.event as NotifierEvent['event'], start: r.start as number, end: r.end as number, removed: r.removed as boolean | undefined, note: r.note as string | undefined };
        mirror(pid, ev);
        if (r.tid !== undefined) { let q = pending.get(pid); if (!q) pending.set(pid, q = []); q.push(ev); }
        else (wake ??= { pid, evs: [] }).evs.push(ev);
        break;
      }
      case 'userptr': lastUserptr = r; break;
      case 'host': recordedHost.push({ seq: r.seq, key: hostKey(r.cmd as Record<string, unknown>) }); break;
      case 'ioctl': {
        ioctls++;
        const pid = r.pid as number;
        const f = files.get(r.file as number);
        if (!f) { differ(r.seq, `${String(r.name)}: file ${String(r.file)} not open`, r.result, null); break; }
        const q = pending.get(pid);
        if (q?.length) { device.clients.get(pid)?.inject(q); pending.delete(pid); }
        if (r.fault === true) {
          // Failed by a rule before its handler: its entry ran (the events drained, the work done), nothing else.
          if (device.clients.has(pid)) device.service(pid);
          break;
        }
        if (lastUserptr && lastUserptr.file === r.file && (typeof lastUserptr.result === 'number' || lastUserptr.maps)) {
          const a = lastUserptr.addr as number, s = lastUserptr.size as number;
          ensureMapped(pid, a - (a % PAGE), Math.ceil((a + s) / PAGE) * PAGE, lastUserptr.maps as Mapping[] | undefined);
        }
        lastUserptr = null;
        const writes: Io[] = [];
        const res = f.ioctl(pid, r.cmd as number, hexBytes(r.raw), servedUser((r.reads as Io[] | undefined) ?? [], (r.writes as Io[] | undefined) ?? [], writes));
        const got = isErr(res.result) ? res.result.code : res.result;
        if (got !== r.result) differ(r.seq, `${String(r.name)} result`, r.result, got);
        // The out fields as the trace dumps them (compared where the caller's struct holds the whole kernel struct).
        const n = device.table.negotiate(r.cmd as number);
        if (!isErr(n) && r.out !== undefined && res.out.length >= n.row.layout.size) {
          const out = JSON.parse(JSON.stringify(n.row.layout.dump(n.row.layout.decode(res.out)), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))) as unknown;
          if (JSON.stringify(out) !== JSON.stringify(r.out)) differ(r.seq, `${String(r.name)} out fields`, r.out, out);
        }
        const recW = ((r.writes as Io[] | undefined) ?? []).map((w) => (w.errno ? { addr: w.addr, len: w.len, errno: w.errno } : { addr: w.addr, len: w.len, data: w.data }));
        if (JSON.stringify(recW) !== JSON.stringify(writes)) differ(r.seq, `${String(r.name)} writes through its pointers`, recW, writes);
        break;
      }
    }
  }
  flushWake();
  for (const f of files.values()) f.close();
  const n = Math.max(recordedHost.length, replayedHost.length);
  for (let i = 0; i < n; i++) {
    const rec = recordedHost[i], got = replayedHost[i];
    if (rec?.key !== got) differ(rec?.seq ?? 0, `host command ${i + 1}`, rec ? JSON.parse(rec.key) : null, got ? JSON.parse(got) : null);
  }
  device.shutdown();
  return { ioctls, hostCommands: replayedHost.length, differences };
}
