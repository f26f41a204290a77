// The recording host keeps digests, never payloads: size + SHA-256 + the first bytes (a copy, not a view of the
// payload), bounded lists; retainedBytes() counts what it holds of client data and returns to zero when the owning
// context is destroyed / the resource unref'd / the entry leaves a bounded log. onCommand still sees full commands.
import test from 'ava';
import { createHash } from 'crypto';
import { RecordingHost, HOST_HEAD_BYTES, HOST_LIST_KEEP, type HostCommand } from '../../core';

const submit = (ctxId: number, data: Uint8Array, resIds: number[] = []): HostCommand => ({ cmd: 'SUBMIT_3D', ctxId, ringIdx: 0, data, resIds });

test('SUBMIT_3D: size, SHA-256 and a copied head; the full command goes to onCommand only', (t) => {
  const h = new RecordingHost();
  const seen: HostCommand[] = [];
  h.onCommand = (c) => seen.push(c);
  const payload = Buffer.alloc(1 << 20, 7); // a Buffer: its slice() would be a view of the whole megabyte
  h.submit(submit(1, payload, Array.from({ length: 100 }, (_, i) => i + 2)));
  const s = h.ofType('SUBMIT_3D')[0]!;
  t.is(s.size, 1 << 20);
  t.is(s.sha256, createHash('sha256').update(payload).digest('hex'));
  t.is(s.head.length, HOST_HEAD_BYTES);
  t.is(s.head.buffer.byteLength, HOST_HEAD_BYTES, 'the head owns its bytes: the payload can be collected');
  t.is(s.resIds.length, HOST_LIST_KEEP);
  t.is(s.numResIds, 100);
  t.false('data' in s);
  t.is((seen[0] as { data: Uint8Array }).data, payload, 'the observer gets the payload itself');
  t.is(h.retainedBytes(), HOST_HEAD_BYTES + HOST_LIST_KEEP * 8);
});

test('retained bytes: released at CTX_DESTROY (submits) and RESOURCE_UNREF (blob page lists); digests stay in the log', (t) => {
  const h = new RecordingHost();
  h.submit({ cmd: 'CTX_CREATE', ctxId: 1, contextInit: 8, debugName: 'a' });
  h.submit({ cmd: 'CTX_CREATE', ctxId: 2, contextInit: 8, debugName: 'b' });
  for (let i = 0; i < 10; i++) h.submit(submit(1, new Uint8Array(1000)));
  h.submit(submit(2, new Uint8Array(10)));
  const entries = Array.from({ length: 1000 }, (_, i) => ({ addr: i * 8192, length: 4096 }));
  h.submit({ cmd: 'RESOURCE_CREATE_BLOB', resId: 5, ctxId: 1, blobMem: 3, blobFlags: 8, blobId: 0n, size: 4096000n, entries });
  const blob = h.ofType('RESOURCE_CREATE_BLOB')[0]!;
  t.is(blob.entries.length, HOST_LIST_KEEP);
  t.is(blob.numEntries, 1000);
  t.is(h.retainedBytes(), 10 * HOST_HEAD_BYTES + 10 + HOST_LIST_KEEP * 16);
  h.submit({ cmd: 'RESOURCE_UNREF', resId: 5 });
  t.is(h.retainedBytes(), 10 * HOST_HEAD_BYTES + 10);
  h.submit({ cmd: 'CTX_DESTROY', ctxId: 1 });
  t.is(h.retainedBytes(), 10);
  t.is(h.ofType('SUBMIT_3D').filter((s) => s.ctxId === 1).length, 10, 'the digests stay');
  t.true(h.ofType('SUBMIT_3D').filter((s) => s.ctxId === 1).every((s) => s.size === 1000 && s.head.length === 0));
  h.submit({ cmd: 'CTX_DESTROY', ctxId: 2 });
  t.is(h.retainedBytes(), 0);
});

test('a bounded log gives back what its dropped entries held', (t) => {
  const h = new RecordingHost(10);
  for (let i = 0; i < 1000; i++) h.submit(submit(1, new Uint8Array(100)));
  t.true(h.log.length <= 20);
  t.is(h.retainedBytes(), h.log.length * HOST_HEAD_BYTES);
  h.clear();
  t.is(h.retainedBytes(), 0);
});
