// uAPI revisions are data: how the kernel the client targets reads RESOURCE_CREATE_BLOB and GETPARAM 9
// (docs/uapi-revisions.md). This is the kernel's axis; the device profile (profile.ts: capsets, params, alignment)
// is the host's. One row per revision drives decode (its struct is the create_blob row's table: size, _IOC number,
// trace dump, fuzz fields), verifyBlob, the userptr path, the pin errno and what reaches the host's wire command.
import { EINVAL, E2BIG, EPERM, type Errno } from '../errno';
import type { Struct } from '../abi/layout';
import * as V from '../abi/virtgpu';
import type { CreateBlobArgs } from '../abi/virtgpu';
import { PAGE_SIZE, type MemlockLimits } from '../memory/client-memory';

export const UAPI_NAMES = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'mainline', 'libhsakmt-72'] as const;
export type UapiName = (typeof UAPI_NAMES)[number];

/**
 * What sends a create down the userptr path (the address read from `field`):
 * - `guest-pointer` (RFC–v4): a guest blob (GUEST / HOST3D_GUEST) with userptr ≠ 0; USE_USERPTR is in the mask but does not select;
 * - `flag-pointer` (v5): a guest blob with USE_USERPTR, which must come with userptr ≠ 0 and only with it;
 * - `hint` (v6): a guest blob with blob_hints & HINT_USERPTR;
 * - `flag-field` (libhsakmt-72): a guest blob with USE_USERPTR (address `userptr`) or USE_SVM (address `svm`);
 * - `none` (mainline): there is no userptr path.
 * A HOST3D blob never takes the userptr path: its userptr is ignored in every revision.
 */
export type UserptrPath = 'guest-pointer' | 'flag-pointer' | 'hint' | 'flag-field' | 'none';

/** GETPARAM 9: no such parameter (EINVAL), v3's RESOURCE_USERPTR (1 when the device takes userptrs), 7.2's BLOB_ALIGNMENT. */
export type Param9 = 'einval' | 'resource-userptr' | 'blob-alignment';

/** The errno of a failed pin: v1/v2 answer ENOMEM for any failure, v3 and later pass the pin's own (EFAULT for a bad page). */
export type PinErrno = 'enomem' | 'own';

/** Extra create checks, by name; a revision lists the ones its kernel makes (first failure wins, in list order). */
export type CheckName =
  | 'flag-needs-pointer'      // USE_USERPTR with userptr = 0 → EINVAL
  | 'pointer-needs-flag'      // userptr ≠ 0 on a guest blob without USE_USERPTR → EINVAL
  | 'rdonly-needs-flag'       // USERPTR_RDONLY without USE_USERPTR → EINVAL
  | 'pointer-needs-hint'      // userptr ≠ 0 without HINT_USERPTR → EINVAL
  | 'rdonly-needs-hint'       // HINT_USERPTR_RDONLY without HINT_USERPTR → EINVAL
  | 'hint-needs-guest'        // HINT_USERPTR on a HOST3D blob → EINVAL
  | 'page-aligned'            // a userptr whose address or size is not page aligned, or size 0 → EINVAL
  | 'address-overflow'        // userptr + size wraps the u64 → EINVAL
  | 'can-mlock'               // a userptr from a process with RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK → EPERM (can_do_mlock)
  | 'int-max-pages'           // more than INT_MAX pages → E2BIG
  | 'one-address'             // USE_USERPTR and USE_SVM together → EINVAL
  | 'svm-needs-pointer';      // USE_SVM with svm = 0 or with userptr ≠ 0 → EINVAL

export interface UapiRevision {
  readonly name: UapiName;
  /** One line for --help, doctor and the docs. */
  readonly summary: string;
  /** False for a layout no kernel was posted with (libhsakmt-72). */
  readonly posted: boolean;
  /** The kernel's create_blob struct: its size is the row's _IOC size; any other size is zero-extended or truncated to it. */
  readonly layout: Struct<CreateBlobArgs>;
  /** blob_flags the create accepts (others → EINVAL). */
  readonly flagMask: number;
  /** Mainline 7.2's blob rules (blob_hints masked by hintMask, pad2 = 0, sizes a multiple of the device's alignment). */
  readonly hintsBase: boolean;
  readonly hintMask: number;
  readonly userptrPath: UserptrPath;
  /** Where a read-only userptr is asked for: USERPTR_RDONLY in blob_flags, HINT_USERPTR_RDONLY in blob_hints, or nowhere. */
  readonly rdonlyBy: 'flag' | 'hint' | 'none';
  readonly checks: readonly CheckName[];
  readonly param9: Param9;
  /** Dedup of a contained range: +3, the existing handles, and `offset` written where the layout has it. */
  readonly dedup: boolean;
  /** MMU-notifier semantics: split, evict, auto-delete on unmap (needs dedup's interval tree). */
  readonly notifier: boolean;
  readonly pinErrno: PinErrno;
  /** blob_flags bits the host's RESOURCE_CREATE_BLOB carries for a userptr (v6 sends an ordinary guest blob). */
  readonly wireFlags: number;
  /** Pins counted against the client's RLIMIT_MEMLOCK (mm->pinned_vm; ENOMEM above it without CAP_IPC_LOCK). */
  readonly memlock: boolean;
}

const F = { MAPPABLE: V.VIRTGPU_BLOB_FLAG_USE_MAPPABLE, SHAREABLE: V.VIRTGPU_BLOB_FLAG_USE_SHAREABLE, CROSS: V.VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE, USERPTR: V.VIRTGPU_BLOB_FLAG_USE_USERPTR, RDONLY: V.VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, SVM: V.VIRTGPU_BLOB_FLAG_USE_SVM };
const UPSTREAM = F.MAPPABLE | F.SHAREABLE | F.CROSS;
const H = { DEFER: V.VIRTGPU_BLOB_HINT_DEFER_MAPPING, USERPTR: V.VIRTGPU_BLOB_HINT_USERPTR, RDONLY: V.VIRTGPU_BLOB_HINT_USERPTR_RDONLY };

const v1Family = {
  posted: true, layout: V.drm_virtgpu_resource_create_blob, flagMask: UPSTREAM | F.USERPTR | F.RDONLY, hintsBase: false, hintMask: 0,
  userptrPath: 'guest-pointer', rdonlyBy: 'flag', checks: ['flag-needs-pointer', 'rdonly-needs-flag'], param9: 'einval',
  pinErrno: 'enomem', wireFlags: UPSTREAM | F.USERPTR | F.RDONLY, memlock: false,
} as const;
const v3Family = {
  posted: true, layout: V.drm_virtgpu_resource_create_blob_v3, flagMask: UPSTREAM | F.USERPTR, hintsBase: false, hintMask: 0,
  userptrPath: 'guest-pointer', rdonlyBy: 'none', checks: ['flag-needs-pointer'], dedup: false, notifier: false,
  pinErrno: 'own', wireFlags: UPSTREAM | F.USERPTR, memlock: false,
} as const;

export const UAPI: Readonly<Record<UapiName, UapiRevision>> = {
  v1: { ...v1Family, name: 'v1', summary: 'the userptr series v1 with its MMU-notifier patch (default): dedup (+3, offset), split/evict/auto-delete', dedup: true, notifier: true },
  v2: { ...v1Family, name: 'v2', summary: 'series v2: dedup (+3, offset), long-term pin, no notifier', dedup: true, notifier: false },
  v3: { ...v3Family, name: 'v3', summary: 'series v3: no dedup, the pin\'s own errno, GETPARAM 9 = RESOURCE_USERPTR', param9: 'resource-userptr' },
  v4: { ...v3Family, name: 'v4', summary: 'series v4: as v3 without the userptr GETPARAM', param9: 'einval' },
  v5: {
    ...v3Family, name: 'v5', summary: 'series v5: USE_USERPTR if and only if userptr, USERPTR_RDONLY back', param9: 'einval',
    flagMask: UPSTREAM | F.USERPTR | F.RDONLY, userptrPath: 'flag-pointer', rdonlyBy: 'flag',
    checks: ['flag-needs-pointer', 'pointer-needs-flag', 'rdonly-needs-flag'], wireFlags: UPSTREAM | F.USERPTR | F.RDONLY,
  },
  v6: {
    name: 'v6', summary: 'series v6 on mainline 7.2: userptr selected by HINT_USERPTR, page-aligned, no userptr flag on the wire',
    posted: true, layout: V.drm_virtgpu_resource_create_blob_v6, flagMask: UPSTREAM, hintsBase: true, hintMask: H.DEFER | H.USERPTR | H.RDONLY,
    userptrPath: 'hint', rdonlyBy: 'hint',
    checks: ['pointer-needs-hint', 'rdonly-needs-hint', 'hint-needs-guest', 'page-aligned', 'address-overflow', 'can-mlock', 'int-max-pages'],
    param9: 'blob-alignment', dedup: false, notifier: false, pinErrno: 'own', wireFlags: UPSTREAM, memlock: true,
  },
  mainline: {
    name: 'mainline', summary: 'mainline 7.2: blob_hints, GETPARAM 9 = BLOB_ALIGNMENT, no userptr',
    posted: true, layout: V.drm_virtgpu_resource_create_blob_hints, flagMask: UPSTREAM, hintsBase: true, hintMask: H.DEFER,
    userptrPath: 'none', rdonlyBy: 'none', checks: [], param9: 'blob-alignment', dedup: false, notifier: false, pinErrno: 'own', wireFlags: UPSTREAM, memlock: false,
  },
  'libhsakmt-72': {
    ...v1Family, name: 'libhsakmt-72', summary: 'not a posted kernel: the newest libhsakmt\'s 72-byte struct (USE_SVM) read with v1 semantics',
    posted: false, layout: V.drm_virtgpu_resource_create_blob_72, flagMask: UPSTREAM | F.USERPTR | F.RDONLY | F.SVM, userptrPath: 'flag-field',
    checks: ['one-address', 'flag-needs-pointer', 'svm-needs-pointer', 'rdonly-needs-flag'], dedup: true, notifier: true,
    wireFlags: UPSTREAM | F.USERPTR | F.RDONLY | F.SVM,
  },
};

export const DEFAULT_UAPI: UapiName = 'v1';

/** A revision name that does not exist, or a mode the revision cannot have. */
export class UapiChoiceError extends Error {}

/** The revision called `name`; an unknown name throws, listing the valid ones. */
export function uapiByName(name: string): UapiRevision {
  const r = (UAPI as Record<string, UapiRevision | undefined>)[name];
  if (!r) throw new UapiChoiceError(`unknown uapi revision '${name}' (valid: ${UAPI_NAMES.join(', ')})`);
  return r;
}

export type Mode = 'notifier' | 'pin';

/** The mode a revision has by itself: notifier where its kernel has one. */
export function modeOf(r: UapiRevision): Mode { return r.notifier ? 'notifier' : 'pin'; }

/**
 * `--mode` on top of a revision: `pin` turns dedup and the notifier off (the revision's layout, masks and errnos
 * stay: `--mode pin` alone is v1's struct with the later revisions' lifetime); `notifier` is the revision's own mode
 * and an error on a revision whose kernel has no notifier.
 */
export function withMode(r: UapiRevision, mode: Mode | undefined): UapiRevision {
  if (mode === undefined || mode === modeOf(r)) return r;
  if (mode === 'notifier') throw new UapiChoiceError(`--mode notifier: uapi ${r.name} has no MMU notifier (revisions with one: ${UAPI_NAMES.filter((n) => UAPI[n].notifier).join(', ')})`);
  return { ...r, dedup: false, notifier: false };
}

const INT_MAX = 0x7fffffff;
const isGuest = (a: CreateBlobArgs): boolean => a.blob_mem === V.VIRTGPU_BLOB_MEM_GUEST || a.blob_mem === V.VIRTGPU_BLOB_MEM_HOST3D_GUEST;
const hints = (a: CreateBlobArgs): number => a.blob_hints ?? 0;
const ptr = (a: CreateBlobArgs): bigint => a.userptr ?? 0n;

/** The userptr address a create asks for under `r` (0n: not the userptr path). Run after the checks. */
export function userptrAddress(r: UapiRevision, a: CreateBlobArgs): bigint {
  if (!isGuest(a)) return 0n;
  switch (r.userptrPath) {
    case 'guest-pointer': return ptr(a);
    case 'flag-pointer': return a.blob_flags & F.USERPTR ? ptr(a) : 0n;
    case 'hint': return hints(a) & H.USERPTR ? ptr(a) : 0n;
    case 'flag-field': return a.blob_flags & F.USERPTR ? ptr(a) : a.blob_flags & F.SVM ? a.svm ?? 0n : 0n;
    case 'none': return 0n;
  }
}

export function userptrReadOnly(r: UapiRevision, a: CreateBlobArgs): boolean {
  switch (r.rdonlyBy) {
    case 'flag': return (a.blob_flags & F.RDONLY) !== 0;
    case 'hint': return (hints(a) & H.RDONLY) !== 0;
    case 'none': return false;
  }
}

/** The client's memory-lock limits, read only by the checks that need them (null: unlimited). */
export type LimitsOf = () => MemlockLimits | null;

/** can_do_mlock(): a non-zero RLIMIT_MEMLOCK, or CAP_IPC_LOCK. */
export function canLock(l: MemlockLimits | null): boolean { return !l || l.limitBytes > 0 || l.capIpcLock; }

/** What each named check rejects, and with which errno. */
const CHECKS: Readonly<Record<CheckName, (a: CreateBlobArgs, limits: LimitsOf) => Errno | null>> = {
  'flag-needs-pointer': (a) => (a.blob_flags & F.USERPTR && ptr(a) === 0n ? EINVAL : null),
  'pointer-needs-flag': (a) => (isGuest(a) && ptr(a) !== 0n && !(a.blob_flags & F.USERPTR) ? EINVAL : null),
  'rdonly-needs-flag': (a) => (a.blob_flags & F.RDONLY && !(a.blob_flags & (F.USERPTR | F.SVM)) ? EINVAL : null),
  'pointer-needs-hint': (a) => (ptr(a) !== 0n && !(hints(a) & H.USERPTR) ? EINVAL : null),
  'rdonly-needs-hint': (a) => (hints(a) & H.RDONLY && !(hints(a) & H.USERPTR) ? EINVAL : null),
  'hint-needs-guest': (a) => (hints(a) & H.USERPTR && !isGuest(a) ? EINVAL : null),
  'page-aligned': (a) => (hints(a) & H.USERPTR && (a.size === 0n || a.size % BigInt(PAGE_SIZE) !== 0n || ptr(a) % BigInt(PAGE_SIZE) !== 0n) ? EINVAL : null),
  'address-overflow': (a) => (hints(a) & H.USERPTR && ptr(a) + a.size > 0xffffffffffffffffn ? EINVAL : null),
  'can-mlock': (a, limits) => (hints(a) & H.USERPTR && !canLock(limits()) ? EPERM : null),
  'int-max-pages': (a) => (hints(a) & H.USERPTR && a.size / BigInt(PAGE_SIZE) > BigInt(INT_MAX) ? E2BIG : null),
  'one-address': (a) => ((a.blob_flags & (F.USERPTR | F.SVM)) === (F.USERPTR | F.SVM) ? EINVAL : null),
  'svm-needs-pointer': (a) => (a.blob_flags & F.SVM && ((a.svm ?? 0n) === 0n || ptr(a) !== 0n) ? EINVAL : null),
};

type Check = (a: CreateBlobArgs, limits: LimitsOf) => Errno | null;
/** Each revision's checks as functions, looked up once (the last revision asked for is kept at hand). */
const checkLists = new WeakMap<UapiRevision, readonly Check[]>();
let lastRev: UapiRevision | null = null;
let lastChecks: readonly Check[] = [];
function checksOf(r: UapiRevision): readonly Check[] {
  if (r === lastRev) return lastChecks;
  let l = checkLists.get(r);
  if (!l) checkLists.set(r, (l = r.checks.map((c) => CHECKS[c])));
  lastRev = r;
  lastChecks = l;
  return l;
}

const noLimits: LimitsOf = () => null;

/** The revision's extra create checks, in its order; null when all pass. */
export function runChecks(r: UapiRevision, a: CreateBlobArgs, limits: LimitsOf = noLimits): Errno | null {
  const l = checksOf(r);
  for (let i = 0; i < l.length; i++) {
    const e = l[i]!(a, limits);
    if (e) return e;
  }
  return null;
}
