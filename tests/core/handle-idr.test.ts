// The GEM handle table (core/drm/gem.ts HandleIdr): the kernel's idr_alloc(…, 1, 0) order — the lowest free handle
// >= 1 — checked against a brute-force model through many alloc/remove cycles, across the bitmap's growth points.
import test from 'ava';
import { HandleIdr } from '../../core/drm/gem';

/** Deterministic PRNG (mulberry32): the same sequence on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('lowest free handle first, against a brute-force model, over 200k random operations and 40k live', (t) => {
  const idr = new HandleIdr<number>();
  const live = new Set<number>();
  const order: number[] = []; // live handles, for picking one to remove
  const r = rng(14);
  const lowestFree = (): number => { let h = 1; while (live.has(h)) h++; return h; };
  let checked = 0;
  for (let op = 0; op < 200_000; op++) {
    // Grow to ~40k live (past the 32 and 1024 growth points), then churn around that size.
    const target = op < 80_000 ? 40_000 : 38_000 + Math.floor(r() * 4_000);
    if (order.length > 0 && (order.length >= target || r() < 0.3)) {
      const i = Math.floor(r() * order.length);
      const h = order[i]!;
      order[i] = order[order.length - 1]!; order.pop();
      t.true(idr.remove(h));
      live.delete(h);
    } else {
      const h = idr.alloc(op);
      if (op % 97 === 0 || live.size < 2000) { t.is(h, lowestFree(), `op ${op}`); checked++; }
      t.false(live.has(h));
      live.add(h); order.push(h);
    }
  }
  t.is(idr.size, live.size);
  t.deepEqual(idr.sortedHandles(), [...live].sort((a, b) => a - b));
  t.true(checked > 1000);
});

test('after many cycles at one size the same handles come back, in order; remove of a free or bogus handle is false', (t) => {
  const idr = new HandleIdr<string>();
  for (let i = 1; i <= 1000; i++) t.is(idr.alloc(`v${i}`), i);
  for (let cycle = 0; cycle < 100_000; cycle++) {
    const h = 1 + (cycle * 7919) % 1000;
    t.true(idr.remove(h));
    const again = idr.alloc(`c${cycle}`);
    if (again !== h) { t.fail(`cycle ${cycle}: freed ${h}, got ${again}`); return; }
  }
  for (const h of [0, -1, 1.5, 1001, 2 ** 32, NaN]) t.false(idr.remove(h), String(h));
  t.true(idr.remove(500));
  t.false(idr.remove(500));
  t.is(idr.get(500), undefined);
  t.true(idr.remove(3));
  t.is(idr.alloc('x'), 3);
  t.is(idr.alloc('y'), 500);
  t.is(idr.alloc('z'), 1001);
  t.is(idr.size, 1001);
  t.is([...idr.values()].length, 1001);
});
