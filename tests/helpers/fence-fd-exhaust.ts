// Run as a child with a low fd limit (`ulimit -n`): fence fds of the in-process node when the server is out of fds.
// Prints one JSON line: what each step's EXECBUFFER {FENCE_FD_OUT} answered and what the host received.
// 1. no fd left at all: EMFILE before the submission (the host gets nothing), as the kernel fails a fence fd;
// 2. two fds freed: the spares are made, and the pending fence's fd and its copy come from them after the submission;
// 3. the fence completed (the server's fd closed): one fd free, the spares cannot be made again: EMFILE, nothing submitted.
import * as fs from 'fs';
import { openDevice } from '../../cuse-dev/transport/in-process';
import { RecordingHost } from '../../core';
import { loadTestkit } from '../../uffd/load';
import * as B from './bytes';

function main(): void {
  const u = loadTestkit();
  const host = new RecordingHost({ fences: 'manual' });
  const node = openDevice({ host });
  const params = Buffer.from(B.ctxParams([[1, 8]]));
  if (node.ioctl(B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, u.bufferAddress(params))) !== 0) throw new Error('CONTEXT_INIT');
  const cmd = Buffer.from([1, 2, 3, 4]);
  const submits = (): number => host.ofType('SUBMIT_3D').length;
  const exec = (): { rc: number; fd: number; submits: number } => {
    const arg = B.execbuffer({ flags: B.FENCE_FD_OUT, size: 4, command: u.bufferAddress(cmd) });
    const rc = node.ioctl(B.VIRTGPU_EXECBUFFER, arg);
    return { rc, fd: rc === 0 ? new B.R(arg).i32(B.EXECBUF_FENCE_FD_AT) : -1, submits: submits() };
  };
  const fillers: number[] = [];
  for (;;) { try { fillers.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
  const out: Record<string, unknown> = { fillers: fillers.length };
  out.full = exec();
  fs.closeSync(fillers.pop()!);
  fs.closeSync(fillers.pop()!);
  const two = exec();
  out.two = { ...two, readableBefore: two.fd >= 0 && u.pollReadable([two.fd], 0) !== 0 };
  host.completeFences();
  out.completed = { readable: two.fd >= 0 && u.pollReadable([two.fd], 0) !== 0, outLive: node.fences!.stats.outLive };
  out.one = exec();
  for (const fd of fillers) fs.closeSync(fd);
  if (two.fd >= 0) u.close(two.fd);
  node.close();
  console.log(JSON.stringify(out));
}

if (require.main === module) main();
