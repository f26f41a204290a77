// bench/callers: what caller attribution costs a request, in-process (no kernel round trip, so no scheduling noise):
// the serving Session's handle() of a no-op ioctl with the thread-pidfd cache of cuse-dev/session/tgid.ts (a hit),
// against a resolver that does no work at all and against a bare Map.get (the shape of the tid cache it replaced,
// which trusted an entry until the next OPEN of that tid). Then resolve() alone, also as on kernels without thread
// pidfds (before 6.9): a leader's hit on its pidfd, another thread's hit with its /proc/TGID/task/TID check, and the
// /proc/TID/status read per request that those kernels paid before. Rows interleaved, median of ROUNDS rounds.
import * as fs from 'fs';
import { Session } from '../cuse-dev/session/session';
import { PidfdCallerResolver, tgidResolver, type CallerResolver } from '../cuse-dev/session/tgid';
import * as F from '../cuse-dev/abi/fuse';
import { FuseOpcode } from '../cuse-dev/abi/opcodes';
import { loadUffd } from '../uffd/load';
import { stubDevice } from './lib/fuse-floor';
import { header, summarize, table, timePerCall } from './lib/measure';

const ROUNDS = 3;
const BATCH = 20_000;
/** `_IO('d', 0)`: no data either way, as bench/transport's no-op row. */
const NOOP_IO = (0x64 << 8) >>> 0;
const STATS = { cached: 0, resolved: 0, refused: 0, exited: 0, evicted: 0, pidfds: 0 };

function request(opcode: number, unique: bigint, body: Uint8Array, tid: number): Uint8Array {
  const b = new Uint8Array(F.fuse_in_header.size + body.length);
  F.fuse_in_header.encode({ len: b.length, opcode, unique, nodeid: 1n, uid: 0, gid: 0, pid: tid, total_extlen: 0 }, b);
  b.set(body, F.fuse_in_header.size);
  return b;
}

/** A CUSE session past INIT with one open file; returns the no-op IOCTL request to replay. */
function session(resolver: CallerResolver, tid: number): { s: Session; req: Uint8Array } {
  const s = new Session({ kind: 'cuse', device: stubDevice(), cuse: { devname: 'dri/renderD200', major: 0, minor: 0, unrestricted: false }, tgid: resolver });
  s.handle(request(FuseOpcode.CUSE_INIT, 1n, F.cuse_init_in.encode({ major: 7, minor: 38, unused: 0, flags: 0 }), tid));
  const open = s.handle(request(FuseOpcode.FUSE_OPEN, 2n, new Uint8Array(F.fuse_open_in.size), tid))!;
  const fh = new DataView(open.buffer, open.byteOffset).getBigUint64(F.fuse_out_header.size, true);
  const ioctl = F.fuse_ioctl_in.encode({ fh, flags: 0, cmd: NOOP_IO, arg: 0n, in_size: 0, out_size: 0 });
  return { s, req: request(FuseOpcode.FUSE_IOCTL, 3n, ioctl, tid) };
}

export function main(): string {
  const u = loadUffd();
  const tid = process.pid; // this process's main thread: alive for the whole run
  const pidfd = new PidfdCallerResolver(u, { slots: 16 });
  const leaderOnly = new PidfdCallerResolver(u, { slots: 16, threadPidfds: false });
  // Another thread of this process (libuv's and V8's live for the whole run): a non-leader.
  const other = Number(fs.readdirSync('/proc/self/task').find((t) => Number(t) !== tid));
  const perRequest = tgidResolver();
  const map = new Map<number, number>([[tid, tid]]);
  const none: CallerResolver = { resolve: () => tid, forget: () => undefined, close: () => undefined, stats: () => STATS };
  const cache: CallerResolver = { resolve: (t) => map.get(t) ?? t, forget: (t) => { map.delete(t); }, close: () => undefined, stats: () => STATS };
  try {
    const rows = [
      { name: 'Session.handle(no-op ioctl), caller from the thread-pidfd cache (hit)', r: pidfd },
      { name: 'Session.handle(no-op ioctl), caller from a bare Map.get (the cache it replaced)', r: cache },
      { name: 'Session.handle(no-op ioctl), caller resolution doing nothing', r: none },
    ].map((x) => ({ ...x, ...session(x.r, tid), runs: [] as number[] }));
    const direct = [
      { name: 'resolve(): thread-pidfd cache hit alone', f: () => { pidfd.resolve(tid, 0, 0); }, runs: [] as number[] },
      { name: 'resolve(): Map.get alone', f: () => { cache.resolve(tid, 0, 0); }, runs: [] as number[] },
      { name: 'resolve() without thread pidfds: the main thread\'s hit (its pidfd)', f: () => { leaderOnly.resolve(tid, 0, 0); }, runs: [] as number[] },
      { name: 'resolve() without thread pidfds: another thread\'s hit (access of /proc/TGID/task/TID)', f: () => { leaderOnly.resolve(other, 0, 0); }, runs: [] as number[], slow: true },
      { name: 'resolve() reading /proc/TID/status (every request before, without thread pidfds)', f: () => { perRequest.resolve(other, 0, 0); }, runs: [] as number[], slow: true },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const x of rows) x.runs.push(timePerCall(x.name, () => { x.s.handle(x.req); }, { batch: BATCH }).median);
      for (const x of direct) x.runs.push(timePerCall(x.name, x.f, { batch: 'slow' in x ? BATCH / 10 : BATCH * 10 }).median);
    }
    if (pidfd.stats().resolved !== 1) throw new Error(`the pidfd cache missed: ${JSON.stringify(pidfd.stats())}`);
    if (leaderOnly.stats().resolved !== 2 || leaderOnly.stats().pidfds !== 1) throw new Error(`the leader-only cache missed: ${JSON.stringify(leaderOnly.stats())}`);
    const med = (xs: number[]): number => summarize('', '', xs).median;
    const [withPidfd, withMap, withNone] = rows.map((x) => med(x.runs));
    const base = withNone!;
    const out = [header('npm run bench -- callers'), ''];
    out.push(table(`callers: per request, µs/op, median of ${ROUNDS} interleaved rounds (each the median of 15 batches); ratio: vs no resolution`, [
      ...rows.map((x) => ({ name: x.name, value: med(x.runs), unit: 'µs/op', baseline: base, note: `runs ${x.runs.map((v) => v.toFixed(4)).join(' / ')}` })),
      ...direct.map((x) => ({ name: x.name, value: med(x.runs), unit: 'µs/op', note: `runs ${x.runs.map((v) => v.toFixed(4)).join(' / ')}` })),
    ]));
    out.push('', `added per request by the thread-pidfd cache: ${((withPidfd! - base) * 1000).toFixed(1)} ns against no resolution, ${((withPidfd! - withMap!) * 1000).toFixed(1)} ns against the bare Map.get (budget 300 ns)`);
    return out.join('\n');
  } finally {
    pidfd.close();
    leaderOnly.close();
  }
}

if (require.main === module) console.log(main());
