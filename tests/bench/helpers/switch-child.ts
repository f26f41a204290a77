// A process for fuse-uring-switch.test.ts: turns the stand-in switch file (argv[2]) on through withFuseUring, says
// "on", and waits until a signal ends it.
import { withFuseUring } from '../../../bench/lib/fuse-uring-switch';

void withFuseUring(() => {
  process.stdout.write('on\n');
  return new Promise<void>(() => { setInterval(() => undefined, 1000); });
}, process.argv[2]!);
