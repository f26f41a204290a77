// The uffd watcher's areas (uffd/uffd-watcher.ts: whole VMAs registered, shared by the userptrs inside them, kept in
// interval treaps) against the kernel's own record: random maps, unmaps, mprotects, DONTNEEDs, registrations and
// unregistrations on real memory of this process (whole-VMA mode, inside the test's PROT_NONE reservation), and after
// each step the pages the watcher says it watches are exactly those /proc/self/smaps marks registered (" uw"), every
// live registration is exact(), and no UFFDIO_UNREGISTER failed. Seeded: a failure prints its seed and step.
import test from 'ava';
import * as fs from 'fs';
import { createOwnUffd } from '../../uffd/acquire';
import { UffdWatcher } from '../../uffd/uffd-watcher';
import { Rng } from '../helpers/fuzz-ioctl';
import { u, C, PG } from './helpers/real-harness';
import { reservation } from './helpers/reservation';

const R = reservation();
const RW = C.PROT_READ | C.PROT_WRITE;
const ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS;
const PAGES = 48;

/** Pages of [base, base + pages) inside a VMA whose VmFlags say registered on a userfaultfd. */
function kernelWatched(base: number, pages: number): boolean[] {
  const out = new Array<boolean>(pages).fill(false);
  let lo = 0, hi = 0;
  for (const line of fs.readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) { lo = parseInt(m[1]!, 16); hi = parseInt(m[2]!, 16); continue; }
    if (!line.startsWith('VmFlags:') || !line.includes(' uw')) continue;
    for (let a = Math.max(lo, base); a < Math.min(hi, base + pages * PG); a += PG) out[(a - base) / PG] = true;
  }
  return out;
}

function watcherWatched(w: UffdWatcher, base: number, pages: number): boolean[] {
  const out = new Array<boolean>(pages).fill(false);
  for (const [s, e] of w.watchedAreas()) for (let a = Math.max(s, base); a < Math.min(e, base + pages * PG); a += PG) out[(a - base) / PG] = true;
  return out;
}

for (const seed of [1, 2, 3]) {
  test.serial(`areas follow the kernel's registered VMAs through random maps, unmaps, mprotects, DONTNEEDs and (un)registrations (seed ${seed})`, (t) => {
    const rng = new Rng(seed);
    const base = R.take(PAGES * PG);
    const mapped = new Array<boolean>(PAGES).fill(false);
    const regs = new Map<number, [number, number]>(); // id → [first page, last page]
    const w = new UffdWatcher({ pid: process.pid, uffd: createOwnUffd(u), wholeVmas: true });
    let nextId = 1;
    const at = (p: number): number => base + p * PG;
    const randomRange = (): [number, number] => { const p = rng.int(PAGES); return [p, Math.min(PAGES - 1, p + rng.int(8))]; };
    /** A random run of mapped pages, or null. */
    const mappedRange = (): [number, number] | null => {
      const starts = mapped.flatMap((m, i) => (m ? [i] : []));
      if (!starts.length) return null;
      const p = rng.pick(starts);
      let q = p;
      while (q + 1 < PAGES && mapped[q + 1] && rng.chance(0.8)) q++;
      return [p, q];
    };
    /** The events of the step, as core would take them: an UNMAP ends the userptrs it meets (their BO deleted). */
    const settle = (): void => {
      for (const ev of w.drain()) {
        if (ev.event !== 'UNMAP') continue;
        for (const [id, [p, q]] of [...regs]) if (at(p) < ev.end && at(q + 1) > ev.start) { w.unregister(id); regs.delete(id); }
      }
    };
    try {
      for (let step = 0; step < 250; step++) {
        const op = rng.int(6);
        let what = '';
        if (op === 0) {
          const [p, q] = randomRange();
          u.mmap(at(p), (q - p + 1) * PG, RW, ANON | C.MAP_FIXED, -1, 0);
          for (let i = p; i <= q; i++) { mapped[i] = true; u.poke(at(i), Buffer.from([1])); }
          what = `map ${p}..${q}`;
        } else if (op === 1) {
          const [p, q] = randomRange();
          R.munmap(at(p), (q - p + 1) * PG);
          if (!R.refill(at(p), (q - p + 1) * PG)) throw new Error('the hole was taken by another mapping');
          for (let i = p; i <= q; i++) mapped[i] = false;
          what = `unmap ${p}..${q}`;
        } else if (op === 2 || op === 3) {
          const r = mappedRange();
          if (!r) continue;
          const id = nextId++;
          const res = w.tryRegister(id, at(r[0]), at(r[1] + 1) - 1);
          if (!res.ok) { t.fail(`seed ${seed} step ${step}: register ${r[0]}..${r[1]}: ${res.reason}`); return; }
          regs.set(id, r);
          what = `register ${id} ${r[0]}..${r[1]}`;
        } else if (op === 4) {
          if (regs.size === 0) continue;
          const id = rng.pick([...regs.keys()]);
          w.unregister(id);
          regs.delete(id);
          what = `unregister ${id}`;
        } else {
          const r = mappedRange();
          if (!r) continue;
          if (rng.chance(0.5)) { u.madvise(at(r[0]), (r[1] - r[0] + 1) * PG, C.MADV_DONTNEED); what = `dontneed ${r[0]}..${r[1]}`; }
          else { u.mprotect(at(r[0]), (r[1] - r[0] + 1) * PG, rng.chance(0.5) ? C.PROT_READ : RW); what = `mprotect ${r[0]}..${r[1]}`; }
        }
        settle();
        const k = kernelWatched(base, PAGES).map((x) => (x ? 'w' : '.')).join('');
        const ours = watcherWatched(w, base, PAGES).map((x) => (x ? 'w' : '.')).join('');
        if (k !== ours) { t.is(ours, k, `seed ${seed} step ${step} (${what}): watched pages, ours vs the kernel's`); return; }
        for (const [id, [p, q]] of regs) if (!w.exact(at(p), at(q + 1) - 1)) { t.fail(`seed ${seed} step ${step} (${what}): registration ${id} ${p}..${q} not exact`); return; }
        if (w.counters.unregisterErrors !== 0) { t.fail(`seed ${seed} step ${step} (${what}): a UFFDIO_UNREGISTER failed`); return; }
      }
      t.true(w.counters.unmap > 0 && w.counters.vmaUnregisters > 0, 'the walk unmapped and let go of registered VMAs');
      t.pass();
    } finally {
      w.release();
      R.unmap(base, PAGES * PG);
    }
  });
}
