// The unplugged-device answerer's replies (cuse-dev/transport/unplugged.ts), byte vectors by hand
// (helpers/fuse-bytes.ts): every call ENODEV, close paths succeed, no-reply opcodes get nothing, and the CUSE count
// (files left open) drops only at a RELEASE: a refused open makes no file. The real processes run in
// tests/cuse-dev/fuse.mount.test.ts (FUSE) and tests/vm/cuse-e2e.test.ts (CUSE).
import test from 'ava';
import { constants } from 'os';
import { openAfter, unpluggedReply } from '../../cuse-dev/transport/unplugged';
import * as H from './helpers/fuse-bytes';

const ENODEV = -constants.errno.ENODEV;

function answer(req: Buffer): { error: number; unique: bigint } | null {
  const r = unpluggedReply(req);
  if (!r) return null;
  const o = H.parseOut(r);
  return { error: o.error, unique: o.unique };
}

test('unplugged: ioctls, reads, polls and new opens get ENODEV; FLUSH and RELEASE succeed; INTERRUPT/FORGET get no reply', (t) => {
  t.deepEqual(answer(H.request(H.OP.IOCTL, 7n, H.ioctlIn(1n, 4, H.DRM_IOCTL_VIRTGPU_GETPARAM, 0x1000n, 16, H.getparam(9n, 0x2000n)))), { error: ENODEV, unique: 7n });
  t.deepEqual(answer(H.request(H.OP.OPEN, 8n, H.openIn())), { error: ENODEV, unique: 8n });
  t.deepEqual(answer(H.request(H.OP.READ, 9n, Buffer.alloc(40))), { error: ENODEV, unique: 9n });
  t.deepEqual(answer(H.request(H.OP.POLL, 10n, Buffer.alloc(24))), { error: ENODEV, unique: 10n });
  t.deepEqual(answer(H.request(H.OP.FLUSH, 11n, Buffer.alloc(24))), { error: 0, unique: 11n });
  t.deepEqual(answer(H.request(H.OP.RELEASE, 12n, H.releaseIn(1n))), { error: 0, unique: 12n });
  t.is(answer(H.request(H.OP.INTERRUPT, 13n, H.interruptIn(7n))), null);
  t.is(answer(H.request(H.OP.FORGET, 14n, Buffer.alloc(8))), null);
  t.is(answer(Buffer.alloc(12)), null, 'shorter than a header: nothing to answer');
});

test('unplugged (CUSE count): only a RELEASE ends a file; refused opens, ioctls and flushes leave the count', (t) => {
  let open = 2;
  const seq = [
    H.request(H.OP.IOCTL, 1n, H.ioctlIn(1n, 4, H.DRM_IOCTL_VERSION, 0x1000n, 64, Buffer.alloc(64))),
    H.request(H.OP.OPEN, 2n, H.openIn()),
    H.request(H.OP.FLUSH, 3n, Buffer.alloc(24)),
    H.request(H.OP.INTERRUPT, 4n, H.interruptIn(1n)),
  ];
  for (const r of seq) open = openAfter(r, open);
  t.is(open, 2);
  open = openAfter(H.request(H.OP.RELEASE, 5n, H.releaseIn(1n)), open);
  t.is(open, 1);
  open = openAfter(H.request(H.OP.RELEASE, 6n, H.releaseIn(2n)), open);
  t.is(open, 0, 'the answerer exits here and its close of /dev/cuse removes the char device');
  t.is(openAfter(Buffer.alloc(12), 1), 1, 'a short read is no release');
});
