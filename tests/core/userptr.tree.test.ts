// The file's interval tree (core/userptr/interval-tree.ts) against a brute-force list: random inserts, removals and
// splits; every query answers the userptrs meeting [lo, hi] by (start, last, insertion order), and the size agrees.
import test from 'ava';
import { UserptrTree, type TreeNode } from '../../core/userptr/interval-tree';
import type { Userptr } from '../../core/userptr/userptr';

const PG = 4096;

test('random inserts, removals and splits: every overlap query equals the brute-force answer, in order', (t) => {
  let rs = 12345;
  const rnd = (n: number): number => { rs = (rs * 1103515245 + 12345) & 0x7fffffff; return rs % n; };
  let checks = 0;
  for (let round = 0; round < 300; round++) {
    const tree = new UserptrTree();
    const live: TreeNode[] = [];
    let id = 1;
    for (let step = 0; step < 150; step++) {
      const op = rnd(10);
      if (op < 5 || live.length === 0) {
        const s = rnd(50) * PG;
        const u: TreeNode = { id: id++, start: s, last: s + (1 + rnd(8)) * PG - 1, treeSeq: 0, treeLeft: null, treeRight: null, treeMax: 0, treePrio: 0 } as TreeNode & { id: number };
        tree.insert(u as unknown as Userptr);
        live.push(u);
      } else if (op < 8) {
        const i = rnd(live.length);
        tree.remove(live[i] as unknown as Userptr);
        live.splice(i, 1);
      } else {
        const u = live[rnd(live.length)]!;
        tree.update(u as unknown as Userptr, () => { if (u.last > u.start + PG - 1) { if (rnd(2)) u.start += PG; else u.last -= PG; } });
      }
      const lo = rnd(60) * PG, hi = lo + rnd(10) * PG;
      const got = tree.overlapping(lo, hi) as unknown as TreeNode[];
      const want = live.filter((u) => u.start <= hi && u.last >= lo).sort((a, b) => a.start - b.start || a.last - b.last || a.treeSeq - b.treeSeq);
      if (got.length !== want.length || got.some((u, i) => u !== want[i]) || tree.size !== live.length) { t.fail(`round ${round} step ${step}`); return; }
      const broken = tree.invariantError();
      if (broken) { t.fail(`round ${round} step ${step}: ${broken}`); return; }
      checks++;
    }
    t.is(tree.values().length, live.length);
  }
  t.is(checks, 300 * 150);
});
