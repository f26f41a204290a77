// worker_threads helper for wake-read.test.ts: a serving loop's wait in miniature. readOrWake on a blocking eventfd
// (the stand-in for /dev/fuse) with a wake queue; every return is posted: { n, value } for a read, { n: -1, tokens }
// for a wake-up (drained here, as the serving loop's onWake does). Ends after reading `stop`.
import { parentPort, workerData } from 'worker_threads';
import { loadUffd } from '../../../uffd/load';

const u = loadUffd();
const { dev, queue, stop } = workerData as { dev: number; queue: number; stop: number };
const buf = Buffer.alloc(8);
for (;;) {
  const n = u.readOrWake(dev, buf, queue);
  if (n < 0) {
    parentPort!.postMessage({ n, tokens: [...u.wakeQueueDrain(queue)] });
    continue;
  }
  const value = Number(buf.readBigUInt64LE(0));
  parentPort!.postMessage({ n, value });
  if (value === stop) break;
}
