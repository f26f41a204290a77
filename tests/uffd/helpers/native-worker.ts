// worker_threads helper for native.test.ts: loads the addon in a second JS thread and drains a reader by id, or calls
// madvise from this thread (a task the reader's syscall snapshot did not know before).
import { parentPort, workerData } from 'worker_threads';
import { loadTestkit, loadUffd } from '../../../uffd/load';

const u = loadUffd();
const { readerId } = workerData as { readerId: number };
parentPort!.on('message', (m: string | { madvise: [number, number, number] }) => {
  if (typeof m === 'object') {
    loadTestkit().madvise(...m.madvise); // blocks until the reader read the REMOVE
    parentPort!.postMessage('advised');
  } else if (m === 'drain') {
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
