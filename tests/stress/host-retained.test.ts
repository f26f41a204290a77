// What a client can make the server hold through EXECBUFFER: the host log keeps a digest of each command (size,
// SHA-256, first bytes), so 20 × 64 MiB submits leave the retained-bytes counter where it started once the client
// closed its file. In-process on real memory (this process's pages read through /proc/PID/mem), and through the real
// FUSE node with a C client (tests/c/soak -x). RSS is logged, not asserted.
import test from 'ava';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';
import { createDevice, RecordingHost, HOST_HEAD_BYTES, isErr } from '../../core';
import { procClientProvider } from '../../uffd/proc-pid-mem';
import { probeFuse, startTransport } from '../../cuse-dev/transport/auto';
import { loadUffd } from '../../uffd/load';
import * as B from '../helpers/bytes';
import { SOAK_BIN } from './soak-run';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';

const MiB = 1 << 20;
const SUBMITS = 20;
const SIZE = 64 * MiB;
const rssMiB = (): number => Math.round(process.memoryUsage().rss / MiB);
const execbuffer = (cmd: number, size: number): Uint8Array => new B.W(64).u32(0, 0).u32(4, size).u64(8, cmd).b;

test.serial(`in-process, real memory: ${SUBMITS} × 64 MiB EXECBUFFERs, then close: retained bytes back to the start`, (t) => {
  const host = new RecordingHost(1000);
  const dev = createDevice({ host, clients: procClientProvider() });
  const payload = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4096) payload[i] = (i >>> 12) & 0xff;
  const addr = loadUffd().bufferAddress(payload);
  const start = dev.snapshot().host.retainedBytes;
  const rss0 = rssMiB();
  const f = dev.open(process.pid);
  for (let i = 0; i < SUBMITS; i++) {
    payload[0] = i;
    const r = f.ioctl(process.pid, B.VIRTGPU_EXECBUFFER, execbuffer(addr, SIZE));
    t.is(isErr(r.result) ? r.result.code : r.result, 0);
  }
  const subs = host.ofType('SUBMIT_3D');
  t.is(subs.length, SUBMITS);
  const last = subs.at(-1)!;
  t.is(last.size, SIZE);
  t.is(last.head.length, HOST_HEAD_BYTES);
  t.is(last.head.buffer.byteLength, HOST_HEAD_BYTES, 'the head is a copy: the 64 MiB payload is not kept alive through it');
  t.is(last.head[0], SUBMITS - 1);
  t.is(last.sha256, createHash('sha256').update(payload).digest('hex'));
  const during = dev.snapshot().host.retainedBytes;
  t.is(during - start, SUBMITS * HOST_HEAD_BYTES, 'each submit holds its head only');
  const rss1 = rssMiB();
  f.close();
  t.is(dev.snapshot().host.retainedBytes, start, 'the context is destroyed: its submits hold nothing');
  t.is(host.ofType('SUBMIT_3D').length, SUBMITS, 'the digests stay in the log');
  t.log(`RSS: ${rss0} MiB before, ${rss1} MiB after ${SUBMITS} × 64 MiB submits (the payload buffer itself is 64 MiB)`);
  dev.shutdown();
});

const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;

maybe(`FUSE + C client: ${SUBMITS} × 64 MiB EXECBUFFERs, then close: retained bytes back to the start${fuse.ok ? '' : ` (skipped: ${fuse.reason})`}`, async (t) => {
  t.timeout(90_000);
  if (!fs.existsSync(SOAK_BIN)) return t.fail(`${SOAK_BIN} is missing: run \`make -C tests/c\``);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-retained-'));
  const logs: string[] = [];
  const s = await startTransport('fuse', { workerEntry: SERVE_WORKER_ENTRY, mountDir: path.join(dir, 'mnt'), log: (m) => logs.push(m) });
  const retained = async (): Promise<{ bytes: number; files: number }> => {
    const snap = await s.snapshot();
    return { bytes: (snap.snapshot as { host: { retainedBytes: number } }).host.retainedBytes, files: (snap.counts as { files: number }).files };
  };
  try {
    const start = (await retained()).bytes;
    const rss0 = rssMiB();
    const c = spawn(SOAK_BIN, ['-x', `${SUBMITS}:64`, '-w'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VIRTGPU_EMU_DEVICE: s.path } });
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((res) => c.on('close', (code) => res(code)));
    for (const end = Date.now() + 80_000; !/^submitted|^execbuf/m.test(out) && c.exitCode === null && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
    t.regex(out, new RegExp(`^submitted ${SUBMITS} x 64 MiB`, 'm'), `${out}\n${err}`);
    const during = await retained();
    t.is(during.bytes - start, SUBMITS * 64, 'the file is open: each submit holds its 64-byte head');
    const rss1 = rssMiB();
    c.stdin.end('\n');
    t.is(await exited, 0, `${out}\n${err}`);
    let after = await retained();
    for (const end = Date.now() + 10_000; after.files !== 0 && Date.now() < end; after = await retained()) await new Promise((r) => setTimeout(r, 25));
    t.is(after.files, 0, 'the client\'s file was released');
    t.is(after.bytes, start, 'retained bytes back to where they started');
    t.log(`${out.trim().split('\n')[0]}; server RSS ${rss0} MiB before, ${rss1} MiB with the file open, ${rssMiB()} MiB after the close`);
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
