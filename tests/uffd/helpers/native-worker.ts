// worker_threads helper for native.test.ts: loads the addon in a second JS thread and drains a reader by id.
import { parentPort, workerData } from 'worker_threads';
import { loadUffd } from '../../../uffd/load';

const u = loadUffd();
const { readerId } = workerData as { readerId: number };
parentPort!.on('message', (m: string) => {
  if (m === 'drain') {
    const buf = u.readerDrain(readerId);
    parentPort!.postMessage(buf);
  } else if (m === 'bad') {
    try {
      u.readerDrain(-1);
    } catch (e) {
      const err = e as { constructor: { name: string }; code?: string };
      parentPort!.postMessage({ ctor: err.constructor.name, code: err.code });
    }
  }
});
parentPort!.postMessage('ready');
