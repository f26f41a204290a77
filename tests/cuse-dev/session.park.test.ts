// Parked ioctls (Session with `interleave`, as the serving worker runs it): an ioctl whose file offers a preparation
// is answered only after its steps ran between other requests; other requests are answered at once meanwhile; a
// FUSE INTERRUPT of a parked ioctl answers it EINTR without running it; a stop answers it ENODEV. Test double for
// core (CoreDevice), byte vectors by hand (helpers/fuse-bytes.ts).
import test from 'ava';
import { constants } from 'os';
import { Session } from '../../cuse-dev/session/session';
import { tgidResolver } from '../../cuse-dev/session/tgid';
import type { Preparation } from '../../core';
import type { CoreDevice, CoreFile } from '../../cuse-dev/session/core-api';
import * as H from './helpers/fuse-bytes';

const LONG = 0xc0106401; // the double prepares this cmd in STEPS steps
const SHORT = 0xc0106402;
const STEPS = 3;
const TID = 1001;

function setup(interleave: boolean) {
  const calls: { cmd: number; data: number[] }[] = [];
  let stepsRun = 0;
  const file: CoreFile = {
    ioctl: (_pid, cmd, argIn) => { calls.push({ cmd, data: [...argIn] }); return { result: 0, out: Uint8Array.from(argIn) }; },
    prepare: (_pid, cmd): Preparation | null => {
      if (cmd !== LONG) return null;
      let left = STEPS;
      return { step: () => { stepsRun++; return --left === 0; } };
    },
    close: () => undefined,
  };
  const dev: CoreDevice = { open: () => file, plan: () => ({ inSize: 16, outSize: 16, in: [], out: [] }), service: () => undefined, counts: () => ({}), snapshot: () => ({}), shutdown: () => undefined };
  const tgid = tgidResolver((p) => (p === `/proc/${TID}/status` ? 'Tgid:\t1000\n' : 'Tgid:\t0\n'));
  const s = new Session({ kind: 'cuse', device: dev, cuse: { devname: 'dri/renderD130', major: 0, minor: 0, unrestricted: false }, tgid, interleave });
  s.handle(H.request(H.OP.CUSE_INIT, 1n, H.cuseInitIn(7, 38, 0), { pid: TID }));
  const fh = H.parseOut(s.handle(H.request(H.OP.OPEN, 2n, H.openIn(), { pid: TID }))!).body.readBigUInt64LE(0);
  const ioctl = (unique: bigint, cmd: number, fill: number) => {
    const req = H.request(H.OP.IOCTL, unique, H.ioctlIn(fh, 0, cmd, 0x1000n, 16, Buffer.alloc(16, fill)), { pid: TID });
    const r = s.handle(req);
    req.fill(0xee); // the loop reuses its buffer for the next request: a parked ioctl must have kept a copy
    return r;
  };
  return { s, calls, ioctl, steps: () => stepsRun };
}

test('a parked ioctl runs after its steps, other ioctls are answered meanwhile, with its own bytes', (t) => {
  const { s, calls, ioctl, steps } = setup(true);
  t.is(ioctl(10n, LONG, 0xaa), null, 'parked: no reply yet');
  t.is(s.parked(), 1);
  const other = H.parseOut(ioctl(11n, SHORT, 0xbb)!);
  t.is(other.unique, 11n);
  t.deepEqual(calls.map((c) => c.cmd), [SHORT], 'the other request ran; the parked one not yet');
  t.is(s.step(), null);
  t.is(s.step(), null);
  const done = s.step();
  t.truthy(done);
  const out = H.parseOut(done!);
  t.is(out.unique, 10n);
  t.is(out.error, 0);
  t.is(H.parseIoctlOut(out.body).result, 0);
  t.is(steps(), STEPS);
  t.deepEqual(calls[1], { cmd: LONG, data: new Array(16).fill(0xaa) });
  t.is(s.parked(), 0);
  t.is(s.step(), null, 'nothing left');
});

test('INTERRUPT of a parked ioctl answers it EINTR and it never runs', (t) => {
  const { s, calls, ioctl } = setup(true);
  t.is(ioctl(20n, LONG, 1), null);
  const r = s.handle(H.request(H.OP.INTERRUPT, 21n, H.interruptIn(20n)));
  const out = H.parseOut(r!);
  t.is(out.unique, 20n);
  t.is(out.error, -constants.errno.EINTR);
  t.is(s.parked(), 0);
  t.deepEqual(calls, []);
  t.is(s.handle(H.request(H.OP.INTERRUPT, 22n, H.interruptIn(999n))), null, 'an INTERRUPT of anything else stays unanswered');
});

test('a stop answers parked ioctls ENODEV', (t) => {
  const { s, calls, ioctl } = setup(true);
  ioctl(30n, LONG, 1);
  ioctl(31n, LONG, 2);
  const rs = s.abandonParked().map((b) => H.parseOut(b));
  t.deepEqual(rs.map((o) => [o.unique, o.error]), [[30n, -constants.errno.ENODEV], [31n, -constants.errno.ENODEV]]);
  t.deepEqual(calls, []);
});

test('without interleave (stream tests, in-process) nothing is parked', (t) => {
  const { s, calls, ioctl } = setup(false);
  const out = H.parseOut(ioctl(40n, LONG, 7)!);
  t.is(out.unique, 40n);
  t.is(s.parked(), 0);
  t.deepEqual(calls.map((c) => c.cmd), [LONG]);
});
