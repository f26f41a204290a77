// The serving loop's wait on a wake queue (readOrWake): a thread blocked in read(2) of its device, not poll(2), and
// woken by the queue's readers all the same (a signal interrupts the read; syscalls.cc). Real uffd events of this
// process wake a worker thread blocked on a blocking eventfd standing in for /dev/fuse.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { loadTestkit } from '../../uffd/load';
import { reservation } from './helpers/reservation';

const u = loadTestkit();
const C = u.constants;
const PAGE = C.PAGE_SIZE;
const R = reservation();
const SYS_READ_X86_64 = 0; // arch/x86/entry/syscalls/syscall_64.tbl
const TOKEN = 4242;
const ROUNDS = 100;
const STOP = 0xffff;

type Msg = { n: number; value?: number; tokens?: number[] };

/** The thread of this process blocked in read(fd, …), per /proc/self/task/<tid>/syscall ("nr arg0 …" while blocked). */
function blockedInRead(fd: number): boolean {
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let line = '';
    try { line = fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'latin1'); } catch { continue; }
    const [nr, arg0] = line.trim().split(' ');
    if (Number(nr) === SYS_READ_X86_64 && Number(arg0) === fd) return true;
  }
  return false;
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !pred();) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const value = (v: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };

(process.arch === 'x64' ? test.serial : test.serial.skip)('readOrWake on a wake queue: blocked in read(2), woken by every reader event, requests and wake-ups interleaved', async (t) => {
  const queue = u.wakeQueueCreate();
  const dev = u.eventfd(C.EFD_CLOEXEC); // blocking: read(2) waits for a write
  const uffd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
  u.uffdApi(uffd, C.UFFD_FEATURE_EVENT_UNMAP);
  const pages = ROUNDS + 1;
  const addr = R.map(pages, { touch: true });
  u.uffdRegister(uffd, addr, pages * PAGE, C.UFFDIO_REGISTER_MODE_MISSING);
  const reader = u.readerStart(uffd, { notifyFd: queue, notifyToken: TOKEN });
  const worker = new Worker(path.join(__dirname, 'helpers', 'wake-read-worker.js'), { workerData: { dev, queue, stop: STOP } });
  const got: Msg[] = [];
  worker.on('message', (m: Msg) => got.push(m));
  let ended = false;
  worker.once('exit', () => { ended = true; });
  try {
    await until('the worker blocked in read(2) of its device', () => blockedInRead(dev));
    fs.writeSync(dev, value(5));
    await until('the request', () => got.length === 1);
    t.deepEqual(got.shift(), { n: 8, value: 5 });
    await until('blocked in read(2) again', () => blockedInRead(dev));
    R.unmap(addr, PAGE); // returns once the reader read the event; it then queues its token and signals
    await until('the wake-up', () => got.length === 1);
    t.deepEqual(got.shift(), { n: -1, tokens: [TOKEN] });
    u.readerDrain(reader); // the reader notifies again only after a drain
    // A request and an event at once, in both orders: each is seen once, none lost whenever the signal lands.
    for (let k = 1; k < pages; k++) {
      const first = k % 2 ? () => fs.writeSync(dev, value(k)) : () => R.unmap(addr + k * PAGE, PAGE);
      const second = k % 2 ? () => R.unmap(addr + k * PAGE, PAGE) : () => fs.writeSync(dev, value(k));
      first();
      second();
      await until(`round ${k}: the request and the wake-up`, () => got.some((m) => m.n > 0) && got.some((m) => m.n < 0));
      await new Promise((r) => setTimeout(r, 1)); // a second wake-up would be a lost-token bug's twin: none may come
      const reads = got.filter((m) => m.n > 0), wakes = got.filter((m) => m.n < 0);
      t.deepEqual(reads, [{ n: 8, value: k }], `round ${k}`);
      t.deepEqual(wakes.flatMap((m) => m.tokens), [TOKEN], `round ${k}`);
      got.length = 0;
      u.readerDrain(reader);
    }
    await until('blocked in read(2) at the end', () => blockedInRead(dev));
    fs.writeSync(dev, value(STOP));
    await until('the worker ended', () => ended);
    t.deepEqual(got, [{ n: 8, value: STOP }]);
  } finally {
    if (!ended) { fs.writeSync(dev, value(STOP)); await worker.terminate(); }
    u.readerStop(reader);
    R.unmap(addr, pages * PAGE);
    u.wakeQueueClose(queue);
    u.close(dev);
  }
});
