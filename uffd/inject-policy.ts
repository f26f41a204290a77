// Who the server may ptrace-inject a userfaultfd into: processes whose real and effective uids are allowed (the
// server's own euid and those given with --inject-uid), that are dumpable, and that did not opt out with
// VIRTGPU_EMU_NO_INJECT=1 in their environment. Everything else is watched through /proc. Checked from /proc
// without touching the process before the seize; the stopped thread is checked again (inject.ts) before any
// injected syscall runs in it.
import * as fs from 'fs';

/** The client-side opt-out: this variable set to 1 in the environment a process was started with. */
export const NO_INJECT_ENV = 'VIRTGPU_EMU_NO_INJECT';

/** Why a process is not injected into; one announcement per kind ('gone': exited meanwhile, not announced). */
export type RefusalKind = 'uid' | 'nondumpable' | 'opt-out' | 'unreadable' | 'gone';

export interface Refusal { kind: RefusalKind; detail: string }

/** What the checks read of a process (injectable for tests). */
export interface ProcView {
  /** /proc/PID/status (or /proc/PID/task/TID/status) text. */
  status(path: string): string;
  /**
   * Owner uid of a /proc/PID file: root's (or its user namespace's root) instead of the process's euid while it is
   * not dumpable. Not of /proc/PID itself: that directory keeps the euid (fs/proc/base.c task_dump_owner).
   */
  ownerUid(path: string): number;
  /** /proc/PID/environ bytes. */
  environ(path: string): Buffer;
}

export const realProc: ProcView = {
  status: (p) => fs.readFileSync(p, 'latin1'),
  ownerUid: (p) => fs.statSync(p).uid,
  environ: (p) => fs.readFileSync(p),
};

/** Real, effective, saved and filesystem uids from a status text (the "Uid:" line); null when missing. */
export function uidsOf(status: string): [number, number, number, number] | null {
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/m.exec(status);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] : null;
}

/** True when an environ block (NUL-separated) holds NO_INJECT_ENV=1. */
export function optedOut(environ: Buffer): boolean {
  const want = Buffer.from(`${NO_INJECT_ENV}=1`, 'latin1');
  for (let i = 0; i < environ.length;) {
    let end = environ.indexOf(0, i);
    if (end < 0) end = environ.length;
    if (end - i === want.length && environ.subarray(i, end).equals(want)) return true;
    i = end + 1;
  }
  return false;
}

export class InjectPolicy {
  /** Allowed uids: the server's effective uid is always one. */
  readonly uids: ReadonlySet<number>;

  constructor(extraUids: readonly number[] = [], readonly proc: ProcView = realProc, selfEuid = process.geteuid?.() ?? 0) {
    this.uids = new Set([selfEuid, ...extraUids]);
  }

  /** One line for `serve` and `doctor`; `nameOf` gives user names where known. */
  describe(nameOf: (uid: number) => string | undefined = () => undefined): string {
    const who = [...this.uids].map((id) => { const n = nameOf(id); return n && n !== String(id) ? `${id} (${n})` : String(id); });
    return `a userfaultfd is ptrace-injected only into dumpable processes of uid ${who.join(', ')} that do not set ${NO_INJECT_ENV}=1; other clients are watched through /proc`;
  }

  /** The uid rule on one status text: real and effective uid both allowed. */
  private uidRefusal(status: string, who: string): Refusal | null {
    const ids = uidsOf(status);
    if (!ids) return { kind: 'unreadable', detail: `${who}: no Uid line in its status` };
    const [real, eff] = ids;
    if (!this.uids.has(real) || !this.uids.has(eff)) {
      return { kind: 'uid', detail: `${who} runs as uid ${real === eff ? real : `${real} (effective ${eff})`}, not an allowed uid (${[...this.uids].join(', ')}; --inject-uid adds more)` };
    }
    return null;
  }

  /**
   * Before any ptrace request: null when the process may be injected into, else why not. A process that is gone
   * or unreadable is refused (nothing is known about it).
   */
  check(pid: number): Refusal | null {
    const who = `pid ${pid}`;
    try {
      const status = this.proc.status(`/proc/${pid}/status`);
      const r = this.uidRefusal(status, who);
      if (r) return r;
      // The kernel makes /proc/PID/status root's while the process is not dumpable (seen for non-root uids only).
      const eff = uidsOf(status)![1];
      const owner = this.proc.ownerUid(`/proc/${pid}/status`);
      if (owner !== eff) return { kind: 'nondumpable', detail: `${who} is not dumpable (its /proc files are owned by uid ${owner}, the process runs as ${eff})` };
      if (optedOut(this.proc.environ(`/proc/${pid}/environ`))) return { kind: 'opt-out', detail: `${who} set ${NO_INJECT_ENV}=1` };
      return null;
    } catch (e) {
      const code = (e as { code?: string }).code;
      return { kind: code === 'ENOENT' || code === 'ESRCH' ? 'gone' : 'unreadable', detail: `${who}: ${code ?? String(e)} reading /proc` };
    }
  }

  /**
   * Once thread `tid` is stopped (its credentials cannot change): its uids again. A thread already gone (killed
   * while stopped) is not refused here: the next ptrace request finds it dead and it is reaped as such.
   */
  recheck(pid: number, tid: number): Refusal | null {
    try {
      return this.uidRefusal(this.proc.status(`/proc/${pid}/task/${tid}/status`), `pid ${pid} thread ${tid}`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ESRCH') return null;
      return { kind: 'unreadable', detail: `pid ${pid} thread ${tid}: ${code ?? String(e)} reading /proc` };
    }
  }
}

/** What each kind of refusal means for the client, for the one announcement of that kind. */
export function refusalMessage(r: Refusal): string {
  const why: Record<RefusalKind, string> = {
    uid: 'its uid is not allowed',
    nondumpable: 'it is not dumpable (PR_SET_DUMPABLE 0, or a setuid/setgid program)',
    'opt-out': `it opted out (${NO_INJECT_ENV}=1)`,
    unreadable: 'its /proc entries could not be read',
    gone: 'it has exited',
  };
  return `not injecting a userfaultfd: ${why[r.kind]} (${r.detail}); such clients are watched through /proc (further ones not announced)`;
}
