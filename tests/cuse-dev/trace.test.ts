// What --trace records at the transport edge: a RETRY names the request it answers (unique, caller tgid, cmd), and
// the serving device forwards every host command (found missing when the CUSE e2e in tests/vm read a real trace).
import test from 'ava';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
import { makeDevice, type ProviderChoice } from '../../cli/compose';
import { Session, type SessionTraceEvent } from '../../cuse-dev/session/session';
import { tgidResolver } from '../../cuse-dev/session/tgid';
import { traceJson } from '../../cuse-dev/trace/jsonl';
import * as H from './helpers/fuse-bytes';

const UNRESTRICTED = 2;
const TID = 1001; // a thread of process 1000

function setup() {
  const events: { t: string; [k: string]: unknown }[] = [];
  const provider: ProviderChoice = { provider: simProvider(new SimMachine(), new Map<number, SimProcess>()), watcher: 'sim', reasons: [] };
  const { device } = makeDevice({ mode: 'notifier', watch: 'none' }, (ev) => events.push(ev), undefined, provider);
  const tgid = tgidResolver((p) => (p === `/proc/${TID}/status` ? 'Name:\tumd\nTgid:\t1000\nPid:\t1001\n' : 'Tgid:\t0\n'));
  const s = new Session({
    kind: 'cuse', device, tgid, cuse: { devname: 'dri/renderD128', major: 226, minor: 128, unrestricted: true },
    trace: (ev: SessionTraceEvent) => events.push(ev),
  });
  let unique = 10n;
  const send = (op: number, body: Buffer) => H.parseOut(s.handle(H.request(op, ++unique, body, { pid: TID }))!);
  send(H.OP.CUSE_INIT, H.cuseInitIn(7, 38, 1));
  const fh = send(H.OP.OPEN, H.openIn()).body.readBigUInt64LE(0);
  return { events, send, fh, unique: () => unique, session: s };
}

test('RETRY trace events carry the request unique, the caller tgid and the cmd', (t) => {
  const { events, send, fh, unique } = setup();
  send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_GETPARAM, 0x10000n, 0));
  const retry = events.find((e) => e.t === 'transport' && e.op === 'RETRY');
  t.like(retry, { unique: unique().toString(), pid: 1000, cmd: H.DRM_IOCTL_VIRTGPU_GETPARAM });
});

test('the serving device traces every host command (CTX_CREATE at CONTEXT_INIT, CTX_DESTROY at RELEASE)', (t) => {
  const { events, send, fh } = setup();
  const params = 0x30000n; // CONTEXT_INIT with no params: the kernel's default context (num_params 0)
  const ci = Buffer.alloc(16);
  ci.writeUInt32LE(0, 0);
  ci.writeBigUInt64LE(params, 8);
  const CONTEXT_INIT = H.iowr(0x4b, 16);
  send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, CONTEXT_INIT, 0x20000n, 0));
  const r = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, CONTEXT_INIT, 0x20000n, 16, ci)).body);
  t.is(r.result, 0);
  send(H.OP.RELEASE, H.releaseIn(fh));
  const host = events.filter((e) => e.t === 'host').map((e) => (e.cmd as { cmd: string }).cmd);
  t.deepEqual(host, ['CTX_CREATE', 'CTX_DESTROY']);
});

test('trace lines write byte arrays as hex, Buffers included (SUBMIT_3D data is a Buffer slice of the request)', (t) => {
  const req = Buffer.from('..hi..');
  t.is(traceJson({ data: req.subarray(2, 4), u8: new Uint8Array([1, 255]), n: 5n }), '{"data":"6869","u8":"01ff","n":"5"}');
});

test('an INTERRUPT (a client killed mid-ioctl) is traced with the interrupted request unique, and gets no reply', (t) => {
  const { events, session } = setup();
  // The kernel sets FUSE_INT_REQ_BIT (1) in the header's unique; the body names the interrupted request.
  t.is(session.handle(H.request(H.OP.INTERRUPT, 41n, H.interruptIn(40n))), null);
  t.like(events.find((e) => e.t === 'transport' && e.op === 'INTERRUPT'), { unique: '40' });
});
