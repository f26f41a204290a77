// The default host: no GPU, an ordered log of every command with its fields (the only mock: it stands for the GPU).
// The log keeps digests, never a client's payload: a SUBMIT_3D's command bytes become size + SHA-256 + the first
// HOST_HEAD_BYTES, long lists (BO handles, a blob's page entries) keep their first HOST_LIST_KEEP items and a count.
// The full commands go to `onCommand` (the --trace sink writes them out and keeps nothing). What the log holds of
// client data (heads and lists) is counted in retainedBytes() and given back when the owning context is destroyed
// (SUBMIT_3D) or the resource unref'd (RESOURCE_CREATE_BLOB), or when the entry leaves a bounded log.
import * as crypto from 'crypto';
import type { Host, HostCommand, HostCommandName, MemEntry } from './host';
import type { BlobMemory } from '../memory/blob-memory';
import { IdSet } from './id-set';

/** Command bytes a SUBMIT_3D digest keeps. */
export const HOST_HEAD_BYTES = 64;
/** Items a digest keeps of a list (BO resource ids, blob page entries). */
export const HOST_LIST_KEEP = 64;
/** Bytes counted per kept list item (a resource id; a page entry counts twice). */
const ITEM_BYTES = 8;

type Cmd<N extends HostCommandName> = Extract<HostCommand, { cmd: N }>;

/** SUBMIT_3D as recorded: the payload's size, SHA-256 (hex) and first bytes; the first resource ids and their number. */
export type SubmitDigest = Omit<Cmd<'SUBMIT_3D'>, 'data'> & { size: number; sha256: string; head: Uint8Array; numResIds: number };
/** RESOURCE_CREATE_BLOB as recorded: the first page entries and their number. */
export type BlobDigest = Cmd<'RESOURCE_CREATE_BLOB'> & { numEntries: number };

export type RecordedCommand = Exclude<HostCommand, { cmd: 'SUBMIT_3D' | 'RESOURCE_CREATE_BLOB' }> | SubmitDigest | BlobDigest;
export type Recorded = RecordedCommand & { seq: number };

/**
 * SHA-256 of `data` in hex: crypto.hash (one call, its digest fetched once) where Node has it, else createHash, which
 * fetches the digest from OpenSSL 3 each time (~4x the cost for a short command).
 */
const sha256Hex: (data: Uint8Array) => string = typeof (crypto as { hash?: unknown }).hash === 'function'
  ? (data) => (crypto as unknown as { hash(alg: string, d: Uint8Array, enc: 'hex'): string }).hash('sha256', data, 'hex')
  : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** A SUBMIT_3D's digest, with its log seq (one object literal: an object rest and spread cost V8 a runtime call each). */
function submitDigest(c: Cmd<'SUBMIT_3D'>, seq: number): SubmitDigest & { seq: number } {
  const { data, resIds } = c;
  // A copy, never a view (Buffer#slice is one): a view would keep the whole payload alive.
  const head = new Uint8Array(Math.min(data.length, HOST_HEAD_BYTES));
  head.set(data.length > HOST_HEAD_BYTES ? data.subarray(0, HOST_HEAD_BYTES) : data);
  const d: SubmitDigest & { seq: number } = {
    cmd: 'SUBMIT_3D', ctxId: c.ctxId, ringIdx: c.ringIdx, size: data.length, sha256: sha256Hex(data), head,
    resIds: resIds.length > HOST_LIST_KEEP ? resIds.slice(0, HOST_LIST_KEEP) : resIds.slice(), numResIds: resIds.length, seq,
  };
  if (c.fenceId !== undefined) d.fenceId = c.fenceId;
  return d;
}

/** Digest of a host command (what the log keeps of it). */
export function digestCommand(c: HostCommand): RecordedCommand {
  if (c.cmd === 'SUBMIT_3D') { const { seq: _seq, ...d } = submitDigest(c, 0); return d; }
  if (c.cmd === 'RESOURCE_CREATE_BLOB') {
    const entries: MemEntry[] = c.entries.length > HOST_LIST_KEEP ? c.entries.slice(0, HOST_LIST_KEEP) : c.entries;
    return { ...c, entries, numEntries: c.entries.length };
  }
  return c;
}

/** Client data a recorded command holds (payload head, list items). */
function heldBytes(r: RecordedCommand): number {
  if (r.cmd === 'SUBMIT_3D') return r.head.length + r.resIds.length * ITEM_BYTES;
  if (r.cmd === 'RESOURCE_CREATE_BLOB') return r.entries.length * 2 * ITEM_BYTES;
  return 0;
}

/**
 * The digest kept in the log: with an observer (which may keep what it was given), or for a SUBMIT_3D (whose payload
 * is never kept), a new object as digestCommand makes it; otherwise the submitted object itself, which nobody else
 * sees: submit() stamps its seq (and cuts a blob's page list in place), one store site per command so that each
 * stays monomorphic (a shared one sees every command's shape, and V8 then adds the property the slow way).
 */
function copyOf(c: HostCommand, seq: number, observed: boolean): Recorded | null {
  if (c.cmd === 'SUBMIT_3D') return submitDigest(c, seq) as Recorded;
  return observed ? { ...digestCommand(c), seq } as Recorded : null;
}

export interface RecordingHostOptions {
  /** Keep at least the last `limit` entries (at most 2×limit); 0 = unbounded. */
  limit?: number;
  /**
   * `immediate` (default): every fenced submission completes as it is taken. `manual`: completions wait for
   * completeFences() (tests, and a composition root that completes them later, e.g. on a timer).
   */
  fences?: 'immediate' | 'manual';
  /** Manual mode: told of each fenced submission as it is queued (a composition root that completes later, e.g. on a timer). */
  onPending?: (fenceId: number) => void;
}

export class RecordingHost implements Host {
  readonly log: Recorded[] = [];
  private seq = 0;
  private readonly live = new IdSet();
  private retained = 0;
  /**
   * Entries holding client data, by owner, released together at CTX_DESTROY / RESOURCE_UNREF: a context's SUBMIT_3Ds
   * (a set: many per context) and a resource's RESOURCE_CREATE_BLOB: the record itself (one in practice), a list
   * from a second one on. Nothing is allocated per resource: an array literal here would be an allocation site whose
   * objects live as long as the log keeps them, which V8 then pretenures, and an old-space array keeps the young
   * record it points to alive until the next full collection (measured: 4× the bytes promoted per scavenge).
   */
  private readonly heldCtx = new Map<number, Set<Recorded>>();
  private readonly heldRes = new Map<number, Recorded | Recorded[]>();
  /** Optional observer of every full command (the trace sink): called before the digest is kept, nothing retained. */
  onCommand?: (c: HostCommand, seq: number) => void;
  private readonly limit: number;
  private readonly manualFences: boolean;
  private readonly onPending?: (fenceId: number) => void;
  private fenceDone: (id: number) => void = () => undefined;
  /** Fence ids of fenced submissions not completed yet (manual mode), in submission order, from pendingHead on. */
  private pending: number[] = [];
  private pendingHead = 0;
  /** The memory of each resource that has some (what the host reads and writes), until RESOURCE_UNMAP_BLOB / UNREF. */
  private readonly memory = new Map<number, BlobMemory>();

  /** A number: the log limit (a long-running server must not grow without bound; 0 = unbounded). */
  constructor(opts: number | RecordingHostOptions = {}) {
    const o = typeof opts === 'number' ? { limit: opts } : opts;
    this.limit = o.limit ?? 0;
    this.manualFences = o.fences === 'manual';
    this.onPending = o.onPending;
  }

  attach(fenceDone: (id: number) => void): void { this.fenceDone = fenceDone; }
  attachMemory(resId: number, memory: BlobMemory): void { this.memory.set(resId, memory); }
  /** The bytes of resource resId's memory as the host sees them (undefined: none). */
  blobBytes(resId: number): Uint8Array | undefined { return this.memory.get(resId)?.bytes; }
  /** Resources whose memory the host holds now. */
  memoryCount(): number { return this.memory.size; }

  /** Complete the oldest `n` pending fenced submissions (all by default); returns how many. */
  completeFences(n = Infinity): number {
    let done = 0;
    while (done < n && this.pendingHead < this.pending.length) { this.fenceDone(this.pending[this.pendingHead++]!); done++; }
    // Drop the completed prefix once it is the larger part (O(1) amortized per fence).
    if (this.pendingHead * 2 >= this.pending.length) { this.pending = this.pending.slice(this.pendingHead); this.pendingHead = 0; }
    return done;
  }
  /** Fenced submissions not completed yet (manual mode). */
  pendingFences(): number { return this.pending.length - this.pendingHead; }

  submit(c: HostCommand): void {
    const seq = ++this.seq;
    const observer = this.onCommand;
    if (observer !== undefined) observer(c, seq);
    const r = copyOf(c, seq, observer !== undefined) ?? (c as Recorded);
    switch (r.cmd) {
      case 'RESOURCE_CREATE_BLOB': {
        if (r === c) { // in place (a copy has its digest already)
          r.seq = seq;
          r.numEntries = r.entries.length;
          if (r.entries.length > HOST_LIST_KEEP) r.entries = r.entries.slice(0, HOST_LIST_KEEP);
        }
        this.live.add(r.resId);
        const bytes = heldBytes(r);
        if (bytes) {
          this.retained += bytes;
          const h = this.heldRes.get(r.resId);
          if (h === undefined) this.heldRes.set(r.resId, r);
          else if (Array.isArray(h)) h.push(r);
          else this.heldRes.set(r.resId, new Array<Recorded>(h, r));
        }
        break;
      }
      case 'CTX_ATTACH_RESOURCE': r.seq = seq; break;
      case 'CTX_DETACH_RESOURCE': r.seq = seq; break;
      case 'RESOURCE_UNREF': r.seq = seq; this.live.delete(r.resId); this.memory.delete(r.resId); this.releaseRes(r.resId); break;
      case 'RESOURCE_CREATE_3D': r.seq = seq; this.live.add(r.resId); break;
      case 'RESOURCE_UNMAP_BLOB': r.seq = seq; this.memory.delete(r.resId); break;
      case 'CTX_DESTROY': r.seq = seq; this.releaseCtx(r.ctxId); break;
      case 'SUBMIT_3D': {
        const bytes = heldBytes(r);
        if (bytes) {
          this.retained += bytes;
          let set = this.heldCtx.get(r.ctxId);
          if (!set) this.heldCtx.set(r.ctxId, (set = new Set()));
          set.add(r);
        }
        break;
      }
      default: r.seq = seq;
    }
    this.log.push(r);
    // Trim in halves so a bounded log costs O(1) amortized per command.
    if (this.limit && this.log.length > 2 * this.limit) for (const old of this.log.splice(0, this.log.length - this.limit)) this.forget(old);
    if (c.cmd === 'SUBMIT_3D' && c.fenceId !== undefined) {
      if (this.manualFences) { this.pending.push(c.fenceId); this.onPending?.(c.fenceId); }
      else this.fenceDone(c.fenceId);
    }
  }

  /** Host resources created and not yet unref'd. */
  liveResources(): number { return this.live.size; }
  /** Bytes of client data (payload heads, list items) the log holds now. */
  retainedBytes(): number { return this.retained; }
  ofType<N extends HostCommandName>(cmd: N): Extract<Recorded, { cmd: N }>[] {
    return this.log.filter((c) => c.cmd === cmd) as Extract<Recorded, { cmd: N }>[];
  }
  clear(): void { for (const r of this.log) this.forget(r); this.log.length = 0; }

  /** The owner is gone: its entries stay in the log with their digests (size, hash, counts), their data is dropped. */
  private releaseCtx(id: number): void {
    const set = this.heldCtx.get(id);
    if (!set) return;
    this.heldCtx.delete(id);
    for (const r of set) { this.retained -= heldBytes(r); strip(r); }
  }

  private releaseRes(id: number): void {
    const h = this.heldRes.get(id);
    if (h === undefined) return;
    this.heldRes.delete(id);
    if (!Array.isArray(h)) { this.retained -= heldBytes(h); strip(h); return; }
    for (const r of h) { this.retained -= heldBytes(r); strip(r); }
  }

  /** An entry leaves the log. */
  private forget(r: Recorded): void {
    if (r.cmd === 'SUBMIT_3D') {
      const set = this.heldCtx.get(r.ctxId);
      if (!set?.delete(r)) return;
      this.retained -= heldBytes(r);
      if (set.size === 0) this.heldCtx.delete(r.ctxId);
    } else if (r.cmd === 'RESOURCE_CREATE_BLOB') {
      const h = this.heldRes.get(r.resId);
      if (h === r) this.heldRes.delete(r.resId);
      else {
        const i = Array.isArray(h) ? h.indexOf(r) : -1;
        if (i < 0) return;
        const list = h as Recorded[];
        if (list.length === 1) this.heldRes.delete(r.resId); else list.splice(i, 1);
      }
      this.retained -= heldBytes(r);
    }
  }
}

const EMPTY = new Uint8Array(0);
function strip(r: Recorded): void {
  if (r.cmd === 'SUBMIT_3D') { r.head = EMPTY; r.resIds = []; }
  else if (r.cmd === 'RESOURCE_CREATE_BLOB') r.entries = [];
}
