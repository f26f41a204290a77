// A set of ids as bit masks of 16 consecutive ids each (a Map from id / 16 to a 16-bit mask, always a small integer).
// For ids handed out ascending and released in any order (resource ids): a Set of 100k live ids adds and deletes in a
// table of that size, and V8 rehashes such a table into a new one in old space every so many deletes, which makes
// the garbage collector mark the whole heap far more often (measured: the main cost of a create+close at 100k live
// resources). Here an add or delete touches one entry among size / 16; the last mask that became empty is kept (a
// create+close cycle then adds and deletes an entry once every 16 ids, not at every id), an older empty one deleted.
// Ids that are not non-negative safe integers go to a plain Set beside it.
const BITS = 16;

export class IdSet {
  private readonly masks = new Map<number, number>();
  private readonly other = new Set<number>();
  private count = 0;
  /** The key of the one mask kept at 0, or -1. */
  private empty = -1;

  get size(): number { return this.count + this.other.size; }

  has(id: number): boolean {
    if (!(Number.isSafeInteger(id) && id >= 0)) return this.other.has(id);
    const m = this.masks.get(Math.floor(id / BITS));
    return m !== undefined && (m & (1 << id % BITS)) !== 0;
  }

  add(id: number): void {
    if (!(Number.isSafeInteger(id) && id >= 0)) { this.other.add(id); return; }
    const k = Math.floor(id / BITS), bit = 1 << id % BITS;
    const m = this.masks.get(k) ?? 0;
    if (m & bit) return;
    this.masks.set(k, m | bit);
    this.count++;
  }

  delete(id: number): boolean {
    if (!(Number.isSafeInteger(id) && id >= 0)) return this.other.delete(id);
    const k = Math.floor(id / BITS), bit = 1 << id % BITS;
    const m = this.masks.get(k);
    if (m === undefined || !(m & bit)) return false;
    this.masks.set(k, m & ~bit);
    if (m === bit && this.empty !== k) {
      if (this.empty >= 0 && this.masks.get(this.empty) === 0) this.masks.delete(this.empty);
      this.empty = k;
    }
    this.count--;
    return true;
  }
}
