// The file's userptrs by range: an interval treap whose nodes are the userptrs themselves (their tree* fields), keyed
// by (start, last, insertion order: ties in the order they were (re)inserted, at creation or their last split) and augmented with the largest `last` of each subtree. No node, key or interval objects of its
// own: a userptr costs its five fields here, nothing more (the library tree it replaces kept ~300 bytes per entry).
// The same treap serves any objects carrying those fields (IntervalTreap; e.g. the uffd watcher's registered areas).
// Priorities come from a fixed-seed xorshift, so the shape (and every walk) is the same from run to run.
import type { Userptr } from './userptr';

/** The fields a userptr carries for the tree (null / 0 while outside it). */
export interface TreeNode {
  start: number;
  last: number;
  /** Insertion sequence: the tie-break of equal ranges. */
  treeSeq: number;
  treeLeft: TreeNode | null;
  treeRight: TreeNode | null;
  /** Largest `last` in this subtree. */
  treeMax: number;
  /** Heap priority (> 0 while in a tree; 0: not in one). */
  treePrio: number;
}

let seed = 0x2545f491;
function nextPrio(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return (seed >>> 0) || 1;
}

function less(a: TreeNode, b: TreeNode): boolean {
  return a.start < b.start || (a.start === b.start && (a.last < b.last || (a.last === b.last && a.treeSeq < b.treeSeq)));
}

function fix(n: TreeNode): void {
  let m = n.last;
  if (n.treeLeft && n.treeLeft.treeMax > m) m = n.treeLeft.treeMax;
  if (n.treeRight && n.treeRight.treeMax > m) m = n.treeRight.treeMax;
  n.treeMax = m;
}

function insertAt(root: TreeNode | null, n: TreeNode): TreeNode {
  if (!root) return n;
  if (less(n, root)) {
    root.treeLeft = insertAt(root.treeLeft, n);
    if (root.treeLeft.treePrio > root.treePrio) { const l = root.treeLeft; root.treeLeft = l.treeRight; fix(root); l.treeRight = root; fix(l); return l; }
  } else {
    root.treeRight = insertAt(root.treeRight, n);
    if (root.treeRight.treePrio > root.treePrio) { const r = root.treeRight; root.treeRight = r.treeLeft; fix(root); r.treeLeft = root; fix(r); return r; }
  }
  fix(root);
  return root;
}

/** Two treaps, every key of `a` below every key of `b`, joined. */
function join(a: TreeNode | null, b: TreeNode | null): TreeNode | null {
  if (!a) return b;
  if (!b) return a;
  if (a.treePrio > b.treePrio) { a.treeRight = join(a.treeRight, b); fix(a); return a; }
  b.treeLeft = join(a, b.treeLeft); fix(b); return b;
}

function removeAt(root: TreeNode | null, n: TreeNode): TreeNode | null {
  if (!root) return null;
  if (root === n) return join(n.treeLeft, n.treeRight);
  if (less(n, root)) root.treeLeft = removeAt(root.treeLeft, n); else root.treeRight = removeAt(root.treeRight, n);
  fix(root);
  return root;
}

/** The first node in order whose [start, last] meets [lo, hi], or null. */
function firstAt(n: TreeNode | null, lo: number, hi: number): TreeNode | null {
  while (n && n.treeMax >= lo) {
    const l = firstAt(n.treeLeft, lo, hi);
    if (l) return l;
    if (n.start > hi) return null;
    if (n.last >= lo) return n;
    n = n.treeRight;
  }
  return null;
}

/** In order, the nodes whose [start, last] meets [lo, hi]; subtrees whose max ends below lo are skipped. */
function collect(n: TreeNode | null, lo: number, hi: number, out: TreeNode[]): void {
  while (n && n.treeMax >= lo) {
    collect(n.treeLeft, lo, hi, out);
    if (n.start > hi) return; // this one and everything to its right start above hi
    if (n.last >= lo) out.push(n);
    n = n.treeRight;
  }
}

/** Objects carrying the tree fields, by [start, last]: O(log n) insert, remove and lookup (expected). */
export class IntervalTreap<T extends TreeNode> {
  private root: TreeNode | null = null;
  private count = 0;
  private seq = 0;

  get size(): number { return this.count; }

  insert(u: T): void {
    if (u.treePrio) this.remove(u);
    u.treeLeft = u.treeRight = null;
    u.treeMax = u.last;
    u.treePrio = nextPrio();
    u.treeSeq = ++this.seq;
    this.root = insertAt(this.root, u);
    this.count++;
  }

  remove(u: T): void {
    if (!u.treePrio) return;
    this.root = removeAt(this.root, u);
    u.treeLeft = u.treeRight = null;
    u.treePrio = 0;
    this.count--;
  }

  /** Change the range (split): out of the tree under the old key, back in under the new one (in it afterwards). */
  update(u: T, change: () => void): void {
    this.remove(u);
    change();
    this.insert(u);
  }

  /** Nodes whose [start, last] intersects [lo, hi], by (start, last, insertion). */
  overlapping(lo: number, hi: number): T[] {
    const out: TreeNode[] = [];
    collect(this.root, lo, hi, out);
    return out as T[];
  }

  /** The first of overlapping(lo, hi), without the array: null when none. */
  first(lo: number, hi: number): T | null { return firstAt(this.root, lo, hi) as T | null; }

  /** Every node, by (start, last, insertion). */
  values(): T[] { return this.overlapping(-Infinity, Infinity); }
}

/** The file's userptrs. */
export class UserptrTree extends IntervalTreap<Userptr> {}
