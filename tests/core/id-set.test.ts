// IdSet (core/host/id-set.ts) against a Set: random adds and deletes of clustered, ascending and odd ids (negative,
// fractional, huge) answer has, size and delete's result as the Set does, and the mask map stays small.
import test from 'ava';
import { IdSet } from '../../core/host/id-set';

test('random adds and deletes: has, size and delete agree with a Set', (t) => {
  let rs = 777;
  const rnd = (n: number): number => { rs = (rs * 1103515245 + 12345) & 0x7fffffff; return rs % n; };
  const odd = [-1, -16, 0.5, 17.25, 2 ** 53, 2 ** 60, NaN, Infinity];
  let mismatches = 0;
  for (let round = 0; round < 50; round++) {
    const a = new IdSet(), b = new Set<number>();
    let next = rnd(1000);
    for (let step = 0; step < 2000; step++) {
      const op = rnd(10);
      const id = op < 1 ? odd[rnd(odd.length)]! : op < 5 ? next++ : rnd(next + 40);
      if (rnd(2)) { a.add(id); b.add(id); } else if (a.delete(id) !== b.delete(id)) mismatches++;
      const probe = rnd(next + 40);
      if (a.has(probe) !== b.has(probe) || a.has(id) !== b.has(id) || a.size !== b.size) mismatches++;
    }
    for (const id of [...b]) if (!a.delete(id)) mismatches++;
    if (a.size !== 0) mismatches++;
  }
  t.is(mismatches, 0);
});

test('a create+close pattern (ascending ids added and deleted at once) beside 1000 live ids keeps at most one empty mask', (t) => {
  const s = new IdSet();
  for (let i = 2; i < 1002; i++) s.add(i);
  for (let i = 1002; i < 100_000; i++) { s.add(i); s.delete(i); }
  t.is(s.size, 1000);
  const masks = (s as unknown as { masks: Map<number, number> }).masks;
  t.true(masks.size <= Math.ceil(1002 / 16) + 1, `${masks.size} masks`);
});
