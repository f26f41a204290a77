// The Reservation helper's premise on this kernel: mapping PROT_NONE MAP_FIXED over a range registered with a
// userfaultfd reports the replaced mapping as UNMAP (start, end), and blocks like munmap until the event is read;
// a true hole is taken back with MAP_FIXED_NOREPLACE, which never maps over something already there.
import test from 'ava';
import * as fs from 'fs';
import { loadTestkit } from '../../uffd/load';
import { decodeRecords } from './helpers/native-records';
import { Reservation } from './helpers/reservation';

const u = loadTestkit();
const C = u.constants;
const PAGE = C.PAGE_SIZE;
const FEATURES = C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP;

function mapsLine(addr: number): string {
  for (const line of fs.readFileSync('/proc/self/maps', 'latin1').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
    if (m && addr >= parseInt(m[1], 16) && addr < parseInt(m[2], 16)) return m[3];
  }
  return '';
}

test.serial('PROT_NONE MAP_FIXED over a registered range → uffd UNMAP of exactly that range; the address stays ours', (t) => {
  const R = new Reservation(1 << 20);
  const a = R.map(8);
  t.is(mapsLine(a), 'rw-p');
  const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
  u.uffdApi(fd, FEATURES);
  u.uffdRegister(fd, a, 8 * PAGE, C.UFFDIO_REGISTER_MODE_WP);
  const id = u.readerStart(fd, {});
  try {
    R.unmap(a + 2 * PAGE, 3 * PAGE); // returns once the reader thread read the event, as munmap does
    t.deepEqual(decodeRecords(u.readerDrain(id)).map((r) => [r.event, Number(r.a), Number(r.b)]),
      [[C.UFFD_EVENT_UNMAP, a + 2 * PAGE, a + 5 * PAGE]]);
    t.is(mapsLine(a + 2 * PAGE), '---p', 'PROT_NONE, still mapped: nobody else can map there');
    t.deepEqual([...u.peek(a, 1), ...u.peek(a + 5 * PAGE, 1)], [1, 6], 'the pages around it are untouched');
  } finally {
    u.readerStop(id);
  }
  R.unmap(a, 8 * PAGE);
});

test.serial('refill: MAP_FIXED_NOREPLACE takes a true hole back, and never maps over what is there', (t) => {
  const R = new Reservation(1 << 20);
  const a = R.map(4);
  R.munmap(a + PAGE, PAGE);
  t.is(mapsLine(a + PAGE), '');
  t.true(R.refill(a + PAGE, PAGE));
  t.is(mapsLine(a + PAGE), '---p');
  t.throws(() => u.mmap(a, PAGE, C.PROT_NONE, C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_FIXED_NOREPLACE, -1, 0), { code: 'EEXIST' });
  t.is(u.peek(a, 1)[0], 1, 'the mapping already there is intact');
  t.throws(() => R.unmap(a - (1 << 22), PAGE), { message: /not owned/ });
  R.unmap(a, 4 * PAGE);
});
