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

/**
 * Nodes whose treeMax is recomputed after a walk (a split, a join, a removal's ancestors), deepest last: one stack
 * reused by every operation, its entries cleared as they are popped (it keeps no userptr alive), never shrunk.
 */
const path: (TreeNode | null)[] = new Array<TreeNode | null>(64).fill(null);
let depth = 0;
function push(n: TreeNode): void { if (depth === path.length) path.push(n); else path[depth] = n; depth++; }

/** fix() the nodes on the stack from `from` up, deepest first, popping them. */
function fixPath(from: number): void {
  while (depth > from) { fix(path[--depth]!); path[depth] = null; }
}

/**
 * Split the treap `n` around `u`'s key (which no node of it has: sequences are unique) into u's two subtrees. The
 * nodes the split walks (expected fewer than two: the rotations an insert would make) get their treeMax again.
 */
function splitInto(n: TreeNode | null, u: TreeNode): void {
  let lLast: TreeNode | null = null, rLast: TreeNode | null = null;
  u.treeLeft = u.treeRight = null;
  const from = depth;
  while (n) {
    push(n);
    if (less(n, u)) {
      if (lLast) lLast.treeRight = n; else u.treeLeft = n;
      lLast = n; n = n.treeRight;
    } else {
      if (rLast) rLast.treeLeft = n; else u.treeRight = n;
      rLast = n; n = n.treeLeft;
    }
  }
  if (lLast) lLast.treeRight = null;
  if (rLast) rLast.treeLeft = null;
  // Every walked node is deeper than the ones walked before it on its side: fixing in reverse order is bottom-up.
  fixPath(from);
}

/** Two treaps, every key of `a` below every key of `b`, joined; the nodes on the joined spines get their treeMax again. */
function join(a: TreeNode | null, b: TreeNode | null): TreeNode | null {
  if (!a) return b;
  if (!b) return a;
  let root: TreeNode | null = null, hook: TreeNode | null = null, hookLeft = false;
  const from = depth;
  while (a && b) {
    let n: TreeNode, left: boolean;
    // The higher priority is the root; its inner subtree is what is left to join (a.right with b, or a with b.left).
    if (a.treePrio > b.treePrio) { n = a; a = a.treeRight; left = false; } else { n = b; b = b.treeLeft; left = true; }
    if (!hook) root = n; else if (hookLeft) hook.treeLeft = n; else hook.treeRight = n;
    hook = n; hookLeft = left;
    push(n);
  }
  const rest = a ?? b;
  if (hookLeft) hook!.treeLeft = rest; else hook!.treeRight = rest;
  fixPath(from);
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

  /**
   * Top-down: walk down from the root while the nodes have at least u's priority (raising their treeMax to u's
   * last on the way), then split the subtree found there around u's key, u in its place: the treap a recursive
   * insert with rotations makes, without a call or a fix per level.
   */
  insert(u: T): void {
    if (u.treePrio) this.remove(u);
    u.treeMax = u.last;
    u.treePrio = nextPrio();
    u.treeSeq = ++this.seq;
    let parent: TreeNode | null = null, left = false, n = this.root;
    while (n && n.treePrio >= u.treePrio) {
      if (u.last > n.treeMax) n.treeMax = u.last;
      parent = n;
      left = less(u, n);
      n = left ? n.treeLeft : n.treeRight;
    }
    splitInto(n, u);
    fix(u);
    if (!parent) this.root = u; else if (left) parent.treeLeft = u; else parent.treeRight = u;
    this.count++;
  }

  /**
   * Walk down to u by its key, put the join of its subtrees in its place, then fix the ancestors bottom-up until
   * one's treeMax does not change (those above it cannot either).
   */
  remove(u: T): void {
    if (!u.treePrio) return;
    const from = depth;
    let n = this.root;
    while (n && n !== u) { push(n); n = less(u, n) ? n.treeLeft : n.treeRight; }
    if (n) {
      const j = join(u.treeLeft, u.treeRight);
      const parent = depth > from ? path[depth - 1]! : null;
      if (!parent) this.root = j; else if (parent.treeLeft === u) parent.treeLeft = j; else parent.treeRight = j;
      for (let i = depth - 1; i >= from; i--) {
        const p = path[i]!, was = p.treeMax;
        fix(p);
        if (p.treeMax === was) break;
      }
    }
    while (depth > from) path[--depth] = null;
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

  /** For tests: the first broken invariant (key order, heap order of priorities, each treeMax, the count), or null. */
  invariantError(): string | null {
    let nodes = 0, prev: TreeNode | null = null;
    const walk = (n: TreeNode | null, parentPrio: number): string | null => {
      if (!n) return null;
      if (n.treePrio <= 0 || n.treePrio > parentPrio) return `priority ${n.treePrio} under ${parentPrio}`;
      const l = walk(n.treeLeft, n.treePrio);
      if (l) return l;
      if (prev && !less(prev, n)) return `key order at [${n.start}, ${n.last}]`;
      prev = n;
      nodes++;
      const r = walk(n.treeRight, n.treePrio);
      if (r) return r;
      const max = Math.max(n.last, n.treeLeft?.treeMax ?? -Infinity, n.treeRight?.treeMax ?? -Infinity);
      return n.treeMax === max ? null : `treeMax ${n.treeMax} ≠ ${max} at [${n.start}, ${n.last}]`;
    };
    return walk(this.root, Infinity) ?? (nodes === this.count ? null : `${nodes} nodes, count ${this.count}`);
  }

  /** The first of overlapping(lo, hi), without the array: null when none. */
  first(lo: number, hi: number): T | null { return firstAt(this.root, lo, hi) as T | null; }

  /** Every node, by (start, last, insertion). */
  values(): T[] { return this.overlapping(-Infinity, Infinity); }
}

/** The file's userptrs. */
export class UserptrTree extends IntervalTreap<Userptr> {}
