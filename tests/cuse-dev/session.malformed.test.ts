// Garbage over a stream stand-in (pipes into the production serveLoop in a child process): every request gets the
// right errno or is dropped, each kind of problem is logged once, and the loop survives to answer the next request.
import test from 'ava';
import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import * as H from './helpers/fuse-bytes';

const SERVER = path.join(__dirname, 'helpers', 'stream-server.js');
const EIO = -5, EINVAL = -22, ENOSYS = -38, EPROTO = -71;

class Stream {
  private buf = Buffer.alloc(0);
  private waiters: ((b: Buffer) => void)[] = [];
  readonly replies: Buffer[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 16 && this.buf.length >= this.buf.readUInt32LE(0)) {
        const n = this.buf.readUInt32LE(0);
        const r = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        const w = this.waiters.shift();
        if (w) w(r); else this.replies.push(r);
      }
    });
    child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }
  next(ms = 3000): Promise<Buffer> {
    const q = this.replies.shift();
    if (q) return Promise.resolve(q);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no reply')), ms);
      this.waiters.push((b) => { clearTimeout(t); res(b); });
    });
  }
  /** Send one request and wait for its reply. */
  async call(req: Buffer): Promise<ReturnType<typeof H.parseOut>> { this.child.stdin!.write(req); return H.parseOut(await this.next()); }
  /** Send a request that must get no reply; settle so the next write is not coalesced into the same read. */
  async silent(req: Buffer): Promise<void> { this.child.stdin!.write(req); await new Promise((r) => setTimeout(r, 60)); }
}

function start(kind: 'fuse' | 'cuse'): Stream {
  return new Stream(spawn(process.execPath, [SERVER, kind], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

const probe = (u: bigint) => H.request(H.OP.GETATTR, u, Buffer.alloc(16), { nodeid: 1n });

test('FUSE session over a stream: gates, malformed requests, no-reply opcodes, survives, logs once', async (t) => {
  const s = start('fuse');
  try {
    // requests before INIT → EIO; no-reply opcodes before INIT → nothing
    t.like(await s.call(probe(1n)), { unique: 1n, error: EIO });
    await s.silent(H.request(H.OP.FORGET, 2n, Buffer.alloc(8), { nodeid: 2n }));
    t.like(await s.call(probe(3n)), { unique: 3n, error: EIO });
    // INIT with a wrong major → EPROTO; the session still waits for a good INIT
    t.like(await s.call(H.request(H.OP.INIT, 4n, H.initIn(8, 0))), { unique: 4n, error: EPROTO });
    t.like(await s.call(H.request(H.OP.INIT, 5n, H.initIn(7, 3))), { unique: 5n, error: EPROTO });
    const init = await s.call(H.request(H.OP.INIT, 6n, H.initIn(7, 45, 0x73fffffb)));
    t.like(init, { unique: 6n, error: 0, len: 16 + 64 });
    t.like(H.parseInitOut(init.body), { major: 7, minor: 38, flags: 0, maxWrite: 131072 });
    // INIT twice, CUSE_INIT on FUSE → EIO
    t.like(await s.call(H.request(H.OP.INIT, 7n, H.initIn(7, 45))), { unique: 7n, error: EIO });
    t.like(await s.call(H.request(H.OP.CUSE_INIT, 8n, H.cuseInitIn(7, 38, 1))), { unique: 8n, error: EIO });
    // short header with a readable unique → EINVAL (twice: logged once); 8 bytes of garbage → dropped
    const short = H.inHeader(H.OP.GETATTR, 9n, 0).subarray(0, 20);
    t.like(await s.call(short), { unique: 9n, error: EINVAL });
    t.like(await s.call(short), { unique: 9n, error: EINVAL });
    await s.silent(Buffer.from('garbage!'));
    // unknown opcodes → ENOSYS
    t.like(await s.call(H.request(9999, 10n)), { unique: 10n, error: ENOSYS });
    t.like(await s.call(H.request(H.OP.SETXATTR, 11n, Buffer.alloc(16))), { unique: 11n, error: ENOSYS });
    // header len claiming 1 GiB, and a len smaller than what was read → EINVAL
    t.like(await s.call(H.request(H.OP.GETATTR, 12n, Buffer.alloc(16), { nodeid: 1n, len: 1 << 30 })), { unique: 12n, error: EINVAL });
    t.like(await s.call(H.request(H.OP.GETATTR, 13n, Buffer.alloc(16), { nodeid: 1n, len: 41 })), { unique: 13n, error: EINVAL });
    // IOCTL with a truncated fuse_ioctl_in, and with in_size beyond the body → EINVAL
    t.like(await s.call(H.request(H.OP.IOCTL, 14n, Buffer.alloc(12), { nodeid: 3n })), { unique: 14n, error: EINVAL });
    const lying = H.ioctlIn(1n, 0, H.DRM_IOCTL_VERSION, 0x1000n, 64, Buffer.alloc(8));
    lying.writeUInt32LE(64, 24);
    t.like(await s.call(H.request(H.OP.IOCTL, 15n, lying, { nodeid: 3n })), { unique: 15n, error: EINVAL });
    // ioctl on an fh never opened → EBADF
    t.like(await s.call(H.request(H.OP.IOCTL, 16n, H.ioctlIn(42n, 0, H.DRM_IOCTL_VERSION, 0x1000n, 64, Buffer.alloc(64)), { nodeid: 3n })), { unique: 16n, error: -9 });
    // INTERRUPT / BATCH_FORGET / FORGET (even truncated) → no reply
    await s.silent(H.request(H.OP.INTERRUPT, 17n, H.interruptIn(16n)));
    await s.silent(H.request(H.OP.BATCH_FORGET, 18n, Buffer.alloc(8)));
    await s.silent(H.request(H.OP.FORGET, 19n, Buffer.alloc(3)));
    // still serving: the tree answers
    const root = await s.call(probe(20n));
    t.like(root, { unique: 20n, error: 0 });
    t.is(root.body.readUInt32LE(16 + 60), 0o40755); // fuse_attr_out.attr @16, fuse_attr.mode @60
    const lk = await s.call(H.request(H.OP.LOOKUP, 21n, Buffer.from('dri\0'), { nodeid: 1n }));
    t.like(lk, { unique: 21n, error: 0 });
    const dri = lk.body.readBigUInt64LE(0);
    const dev = await s.call(H.request(H.OP.LOOKUP, 22n, Buffer.from('renderD128\0'), { nodeid: dri }));
    t.is(dev.body.readUInt32LE(40 + 60), 0o100666); // fuse_entry_out.attr @40, mode @60
    t.like(await s.call(H.request(H.OP.LOOKUP, 23n, Buffer.from('nope\0'), { nodeid: 1n })), { unique: 23n, error: -2 });
    // every reply was exactly one framed message, nothing extra arrived
    t.is(s.replies.length, 0);
  } finally {
    s.child.stdin!.end();
  }
  t.is(await s.exited, 0);
  const sum = JSON.parse(/SUMMARY (.*)/.exec(s.stderr)![1]!) as { reason: string; stats: { malformed: number; interrupts: number } };
  t.is(sum.reason, 'eof');
  t.is(sum.stats.interrupts, 1);
  t.true(sum.stats.malformed >= 6);
  const logs = s.stderr.split('\n').filter((l) => l.startsWith('LOG '));
  t.is(logs.filter((l) => /shorter than fuse_in_header/.test(l)).length, 1, 'the same problem is logged once');
  t.true(logs.some((l) => /before INIT/.test(l)));
  t.true(logs.some((l) => /after INIT/.test(l)));
});

test('CUSE session over a stream: INIT gate and ops CUSE never sends', async (t) => {
  const s = start('cuse');
  try {
    t.like(await s.call(H.request(H.OP.OPEN, 1n, H.openIn())), { unique: 1n, error: EIO });
    t.like(await s.call(H.request(H.OP.INIT, 2n, H.initIn(7, 38))), { unique: 2n, error: EIO }); // FUSE_INIT on /dev/cuse
    const init = await s.call(H.request(H.OP.CUSE_INIT, 3n, H.cuseInitIn(7, 38, 1)));
    t.like(H.parseCuseInitOut(init.body), { major: 7, flags: 1, info: 'DEVNAME=dri/renderD128\0' });
    t.like(await s.call(H.request(H.OP.CUSE_INIT, 4n, H.cuseInitIn(7, 38, 1))), { unique: 4n, error: EIO });
    t.like(await s.call(H.request(H.OP.LOOKUP, 5n, Buffer.from('x\0'))), { unique: 5n, error: ENOSYS });
    t.like(await s.call(H.request(H.OP.GETATTR, 6n, Buffer.alloc(16))), { unique: 6n, error: ENOSYS });
    const open = await s.call(H.request(H.OP.OPEN, 7n, H.openIn(), { pid: 555 }));
    t.like(open, { unique: 7n, error: 0 });
    t.like(await s.call(H.request(H.OP.POLL, 8n, Buffer.alloc(24))), { unique: 8n, error: ENOSYS });
    t.like(await s.call(H.request(H.OP.RELEASE, 9n, H.releaseIn(open.body.readBigUInt64LE(0)))), { unique: 9n, error: 0 });
  } finally {
    s.child.stdin!.end();
  }
  t.is(await s.exited, 0);
  const sum = JSON.parse(/SUMMARY (.*)/.exec(s.stderr)![1]!) as { counts: { files: number } };
  t.is(sum.counts.files, 0);
});
