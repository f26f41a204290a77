// The single import site of the interval tree (@flatten-js/interval-tree: a red-black interval tree).
import IntervalTree from '@flatten-js/interval-tree';
import type { Userptr } from './userptr';

export class UserptrTree {
  private readonly tree = new IntervalTree<Userptr>();
  private count = 0;

  get size(): number { return this.count; }

  insert(u: Userptr): void {
    if (u.treeKey) this.remove(u);
    u.treeKey = [u.start, u.last];
    this.tree.insert(u.treeKey, u);
    this.count++;
  }

  remove(u: Userptr): void {
    if (!u.treeKey) return;
    this.tree.remove(u.treeKey, u);
    u.treeKey = null;
    this.count--;
  }

  /** Re-key after the range changed (split). */
  update(u: Userptr): void { this.insert(u); }

  /** Userptrs whose [start, last] intersects [lo, hi]. */
  overlapping(lo: number, hi: number): Userptr[] { return this.tree.search([lo, hi]); }

  values(): Userptr[] { return this.tree.values; }
}
