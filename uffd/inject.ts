// ptrace injection of userfaultfd() into a client that did not hand one over (x86-64): seize + interrupt one thread,
// check it may be injected into (the caller's `recheck` of the stopped thread, then `prctl(PR_GET_DUMPABLE)` run in
// it: anything but 1 detaches with nothing changed), run `userfaultfd(O_CLOEXEC|O_NONBLOCK)` at a `syscall`
// instruction, take the fd with pidfd_getfd and verify it (verify.ts), run `close()` of the client's copy (it must
// not keep one: a client holding its uffd stays blocked forever if we die), restore every register, detach. ~1 ms
// once per client.
//
// Never blocking on the tracee: a client thread blocked in OUR FUSE/CUSE request cannot reach a ptrace stop until we
// reply, and a tracee SIGKILLed at any moment closes its files on its way out, which sends FLUSH/RELEASE to the very
// thread that serves requests; a waitpid() that blocks there deadlocks every client. So an Injection is a state
// machine the caller advances with poll(): every wait is waitpid(WNOHANG), every step is one ptrace request, and
// between two polls the caller goes back to serving (the serving loop polls from a timer while one is in flight).
// The interrupted thread stops at its syscall exit, before running user code; each injected syscall is one
// PTRACE_SINGLESTEP over the `syscall` instruction, whose stop comes within microseconds unless the tracee dies.
//
// A tracee that dies at any step (seize, stop, a syscall, restore, detach) is reaped here (waitpid on its tid until
// the tracer link is gone), so its parent can reap it; a tracee that does not stop within `stopTimeoutMs` (100 ms;
// more while it is merely waiting for a CPU) is abandoned: it is detached as soon as it stops (a running tracee
// cannot be detached) or reaped if it dies.
import * as fs from 'fs';
import { constants as osConstants } from 'os';
import { performance } from 'perf_hooks';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { SyscallError } from './errors';
import { adoptUffd } from './verify';

const SYSCALL_INSN = [0x0f, 0x05];
/** waitpid status: stopped (0x7f in the low byte), stop signal in bits 8-15, ptrace event in bits 16-23. */
const isStopped = (st: number): boolean => (st & 0xff) === 0x7f;
const SIGTRAP = 5;
const { EPERM, ESRCH, ETIMEDOUT } = osConstants.errno;
/** x86-64 syscall number of prctl (asm/unistd_64.h) and its PR_GET_DUMPABLE / SUID_DUMP_USER (linux/prctl.h, sched/coredump.h). */
const SYS_prctl = 157;
const PR_GET_DUMPABLE = 3;
const SUID_DUMP_USER = 1;

/** A thread that does not reach its ptrace stop within this long after the seize is abandoned (ms). */
export const INJECT_STOP_TIMEOUT_MS = 100;

/** fd: the client's userfaultfd, verified and initialized here (verify.ts adoptUffd) with `features`. */
export interface InjectResult { fd: number; features: bigint; tid: number; ms: number; userModeOnly: boolean }

/** How an injection ended; poll() returns it once. */
export type InjectionOutcome =
  | { kind: 'injected'; result: InjectResult }
  /** The thread did not stop within stopTimeoutMs: no uffd; detached at its stop, or reaped if it dies. */
  | { kind: 'abandoned' }
  /** The tracee exited (killed) during the injection, at `step`; reaped. */
  | { kind: 'died'; step: InjectionStep }
  /** Stopped, then found not to be injectable (`recheck`, or not dumpable): detached with nothing changed. */
  | { kind: 'refused'; why: string; reason: string }
  | { kind: 'failed'; error: Error };

/** The steps, in order; a tracee may die at any of them. */
export type InjectionStep = 'seize' | 'stop' | 'dumpable' | 'userfaultfd' | 'getfd' | 'close' | 'restore' | 'detach';

export interface InjectionOptions {
  binding?: UffdBinding;
  /** Abandon a thread that has not stopped this long after the seize (ms). Default INJECT_STOP_TIMEOUT_MS. */
  stopTimeoutMs?: number;
  /** Tests: called as each step begins (a test may kill the tracee there). */
  onStep?: (step: InjectionStep) => void;
  /**
   * Called once the thread is stopped (its credentials can no longer change), before anything is read or run in
   * it: a reason refuses the injection (detached at once). The dumpable check follows it in any case.
   */
  recheck?: (pid: number, tid: number) => { kind: string; detail: string } | null;
}

interface Regs { buf: Buffer; get(f: string): bigint; set(f: string, v: bigint): void }

function regs(u: UffdBinding, buf: Buffer): Regs {
  const off = u.constants.USER_REGS_OFFSETS as unknown as Record<string, number>;
  return {
    buf,
    get: (f) => buf.readBigUInt64LE(off[f]),
    set: (f, v) => buf.writeBigUInt64LE(BigInt.asUintN(64, v), off[f]),
  };
}

/** Address of a `syscall` instruction in the tracee: at rip-2 (stopped after one), else in [vdso], else in libc. */
function findSyscallInsn(u: UffdBinding, pid: number, rip: number): number {
  try {
    const b = u.processVmRead(pid, [{ addr: rip - 2, len: 2 }]);
    if (b[0] === SYSCALL_INSN[0] && b[1] === SYSCALL_INSN[1]) return rip - 2;
  } catch { /* rip at a page start */ }
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'latin1');
  const cands = maps.split('\n').filter((l) => /^\S+ r-xp /.test(l)).sort((a, b) => Number(b.endsWith('[vdso]')) - Number(a.endsWith('[vdso]')) || Number(/libc[.-]/.test(b)) - Number(/libc[.-]/.test(a)));
  for (const l of cands) {
    const [s, e] = l.split(' ')[0].split('-').map((x) => parseInt(x, 16));
    const len = Math.min(e - s, 1 << 20);
    let text: Buffer;
    try { text = u.processVmRead(pid, [{ addr: s, len }]); } catch { continue; }
    for (let i = 0; i + 1 < text.length; i++) if (text[i] === SYSCALL_INSN[0] && text[i + 1] === SYSCALL_INSN[1]) return s + i;
  }
  throw SyscallError.from('inject', ESRCH, 'no syscall instruction found in the tracee');
}

type Phase =
  | 'stopping' // seized + interrupted, waiting for the stop
  | 'syscall' // single-stepping an injected syscall, waiting for the step's stop
  | 'release' // no more injection: detach once stopped, or reap once exited
  | 'finished'; // no tracer link left

/**
 * An injection in progress. The constructor seizes and interrupts the thread (throws when refused: nothing is left
 * attached); then poll() advances it without ever blocking, until `finished` (no tracer link left).
 */
export class Injection {
  private readonly u: UffdBinding;
  private readonly t0 = performance.now();
  private readonly stopTimeoutMs: number;
  private readonly onStep?: (step: InjectionStep) => void;
  private readonly recheck?: (pid: number, tid: number) => { kind: string; detail: string } | null;
  private phase: Phase = 'stopping';
  private stepName: InjectionStep = 'seize';
  private outcome: InjectionOutcome | null = null;
  private reported = false;
  private cancelled = false;
  private saved: Buffer | null = null;
  private at = 0;
  private redeliver = 0;
  private fdInTarget = -1;
  private userModeOnly = false;
  private mine = -1;
  private features = 0n;
  private error: Error | null = null;

  constructor(readonly pid: number, readonly tid: number, opts: InjectionOptions | UffdBinding = {}) {
    const o: InjectionOptions = 'constants' in opts ? { binding: opts as UffdBinding } : opts as InjectionOptions;
    this.u = o.binding ?? loadUffd();
    this.stopTimeoutMs = o.stopTimeoutMs ?? INJECT_STOP_TIMEOUT_MS;
    this.onStep = o.onStep;
    this.recheck = o.recheck;
    const C = this.u.constants;
    this.onStep?.('seize');
    this.u.ptrace(C.PTRACE_SEIZE, tid, 0, 0);
    try {
      this.u.ptrace(C.PTRACE_INTERRUPT, tid, 0, 0);
    } catch (e) {
      // Seized but not interruptible: the thread is exiting. Reap it (or detach it) from poll().
      this.error = e as Error;
      this.phase = 'release';
    }
    this.begin('stop');
  }

  /** True once no tracer link is left (detached or reaped): the caller may forget this injection. */
  get finished(): boolean { return this.phase === 'finished'; }
  /** True once the outcome is known (the tracee may still be attached until it stops or exits). */
  get settled(): boolean { return this.outcome !== null; }
  /** Waiting for a stop expected within microseconds (poll soon) rather than lingering after the outcome. */
  get active(): boolean { return this.outcome === null; }
  /** The step in progress (or where it ended). */
  get step(): InjectionStep { return this.stepName; }

  /**
   * Non-blocking: advance as far as possible without waiting. Returns the outcome once, on the poll that settles
   * it (the uffd of an 'injected' outcome is the caller's); null otherwise. Keep polling until `finished`.
   */
  poll(now = performance.now()): InjectionOutcome | null {
    if (this.phase !== 'finished') {
      try { this.advance(now); } catch (e) { this.error ??= e as Error; this.toRelease(); }
    }
    if (this.outcome && !this.reported) { this.reported = true; return this.outcome; }
    return null;
  }

  /** Stop waiting for the thread (server shutdown): no injection unless it already stopped; keep polling to finish. */
  cancel(): void { this.cancelled = true; }

  private advance(now: number): void {
    for (;;) {
      const phase = this.phase;
      if (phase === 'stopping') {
        const st = this.waitStop();
        if (st === null) {
          if (this.cancelled) { this.settle({ kind: 'failed', error: SyscallError.from('inject', 125 /* ECANCELED */, `thread ${this.tid}: cancelled`) }); this.phase = 'release'; continue; }
          if (now - this.t0 > this.stopTimeoutMs && !this.starved(now)) { this.settle({ kind: 'abandoned' }); this.phase = 'release'; continue; }
          return;
        }
        if (st === 'gone') return;
        this.inStop(st);
      } else if (phase === 'syscall') {
        const st = this.waitStop();
        if (st === null || st === 'gone') return; // no deadline: never detach a thread in the middle of our syscall
        this.afterSyscall(st);
      } else if (phase === 'release') {
        this.release();
        return;
      } else return;
      if (this.phase === phase && phase !== 'syscall') return;
    }
  }

  /**
   * A runnable thread ('R') past the timeout has only not been given a CPU yet (a loaded machine): it stops as soon
   * as it runs, so it gets up to 10x the timeout. A sleeping one ('D': vfork, another filesystem) is not waiting on
   * anything we control.
   */
  private starved(now: number): boolean {
    if (now - this.t0 > this.stopTimeoutMs * 10) return false;
    try {
      const st = fs.readFileSync(`/proc/${this.pid}/task/${this.tid}/stat`, 'latin1');
      return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'R';
    } catch { return false; }
  }

  /** waitpid(WNOHANG): a stop status, null (nothing yet), or 'gone' (exited and reaped by this call, or not ours). */
  private waitStop(): number | null | 'gone' {
    const C = this.u.constants;
    let w: { pid: number; status: number };
    try { w = this.u.waitpid(this.tid, C.WNOHANG | C.__WALL); } catch (e) {
      if ((e as { code?: string }).code === 'ECHILD') { this.gone(); return 'gone'; }
      throw e;
    }
    if (w.pid === 0) return null;
    if (!isStopped(w.status)) { this.gone(); return 'gone'; }
    return w.status;
  }

  /** The tracer link is gone (the tracee exited and was reaped, or is no longer ours). */
  private gone(): void {
    this.phase = 'finished';
    if (!this.outcome) this.settle({ kind: 'died', step: this.stepName });
    if (this.mine >= 0 && this.outcome?.kind !== 'injected') { this.u.close(this.mine); this.mine = -1; }
  }

  private settle(o: InjectionOutcome): void {
    if (this.outcome) return;
    this.outcome = o;
    if (o.kind !== 'injected' && this.mine >= 0) { this.u.close(this.mine); this.mine = -1; }
  }

  private begin(step: InjectionStep): void { this.stepName = step; this.onStep?.(step); }

  /** The interrupt (or a signal) stopped the thread: save its registers and start the first injected syscall. */
  private inStop(status: number): void {
    const u = this.u;
    // A signal-delivery stop (not our interrupt trap): inject there too, re-deliver the signal at detach.
    const event = status >> 16;
    const sig = (status >> 8) & 0xff;
    if (event === 0 && sig !== SIGTRAP) this.redeliver = sig;
    if (this.cancelled) { this.settle({ kind: 'failed', error: SyscallError.from('inject', 125, `thread ${this.tid}: cancelled`) }); this.toRelease(); return; }
    const refused = this.recheck?.(this.pid, this.tid) ?? null;
    if (refused) { this.settle({ kind: 'refused', why: refused.kind, reason: refused.detail }); this.toRelease(); return; }
    this.saved = u.ptraceGetRegs(this.tid);
    this.at = findSyscallInsn(u, this.pid, Number(regs(u, this.saved).get('rip')));
    // Root's CAP_SYS_PTRACE overrides PR_SET_DUMPABLE 0, and for a process of root's own uid /proc cannot tell: ask it.
    this.syscall('dumpable', SYS_prctl, PR_GET_DUMPABLE);
  }

  /** Set up `nr(args)` at the syscall instruction and single-step over it; its stop is awaited by poll(). */
  private syscall(step: InjectionStep, nr: number, ...args: number[]): void {
    const u = this.u;
    this.begin(step);
    const r = regs(u, Buffer.from(this.saved!));
    r.set('rax', BigInt(nr));
    r.set('orig_rax', -1n); // no syscall-restart fix-up of our rip/rax on resume
    r.set('rip', BigInt(this.at));
    ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'].forEach((f, i) => r.set(f, BigInt(args[i] ?? 0)));
    u.ptraceSetRegs(this.tid, r.buf);
    u.ptrace(u.constants.PTRACE_SINGLESTEP, this.tid, 0, 0);
    this.phase = 'syscall';
  }

  private afterSyscall(status: number): void {
    const u = this.u, C = u.constants;
    const r = regs(u, u.ptraceGetRegs(this.tid));
    // Any stop other than right after the instruction (a signal arrived first) means our syscall did not run.
    if (Number(r.get('rip')) !== this.at + 2) {
      const sig = (status >> 8) & 0xff;
      if (status >> 16 === 0 && sig !== SIGTRAP && !this.redeliver) this.redeliver = sig;
      throw SyscallError.from('inject', 4 /* EINTR */, `thread ${this.tid}: stopped before the injected ${this.stepName} ran`);
    }
    const ret = Number(BigInt.asIntN(64, r.get('rax')));
    const flags = C.O_CLOEXEC | C.O_NONBLOCK;
    if (this.stepName === 'dumpable') {
      if (ret !== SUID_DUMP_USER) {
        this.settle({ kind: 'refused', why: 'nondumpable', reason: `pid ${this.pid} is not dumpable (PR_GET_DUMPABLE = ${ret})` });
        this.restoreAndDetach();
        return;
      }
      this.syscall('userfaultfd', C.SYS_userfaultfd, flags);
      return;
    }
    if (this.stepName === 'userfaultfd') {
      if (ret < 0 && !this.userModeOnly) { this.userModeOnly = true; this.syscall('userfaultfd', C.SYS_userfaultfd, flags | C.UFFD_USER_MODE_ONLY); return; }
      if (ret < 0) throw SyscallError.from('inject userfaultfd', -ret, `in pid ${this.pid}`);
      this.fdInTarget = ret;
      this.begin('getfd');
      try {
        const pidfd = u.pidfdOpen(this.pid);
        try { this.mine = u.pidfdGetfd(pidfd, ret); } finally { u.close(pidfd); }
        // What the client's "userfaultfd()" returned is the client's to choose (a seccomp user notification can make
        // it any fd): verified here, and closed if it is not a userfaultfd that takes our UFFDIO_API.
        const fd = this.mine;
        this.mine = -1;
        const adopted = adoptUffd(u, fd);
        this.mine = adopted.fd;
        this.features = adopted.features;
      } catch (e) { this.error = e as Error; }
      this.syscall('close', C.SYS_close, ret); // never leave the client its own copy, taken or not
      return;
    }
    // 'close' done: the client keeps no copy.
    this.fdInTarget = -1;
    this.restoreAndDetach();
  }

  /** Back to the client's own registers, then detach (re-delivering the signal of a signal-delivery stop). */
  private restoreAndDetach(): void {
    const u = this.u;
    if (this.saved) {
      this.begin('restore');
      u.ptraceSetRegs(this.tid, this.saved); // throws ESRCH when the tracee was killed meanwhile: release reaps it
      this.saved = null;
    }
    this.begin('detach');
    u.ptrace(u.constants.PTRACE_DETACH, this.tid, 0, this.redeliver);
    this.phase = 'finished';
    if (this.mine >= 0 && !this.error) {
      this.settle({ kind: 'injected', result: { fd: this.mine, features: this.features, tid: this.tid, ms: performance.now() - this.t0, userModeOnly: this.userModeOnly } });
      this.mine = -1; // the caller's now
    } else {
      this.settle({ kind: 'failed', error: this.error ?? SyscallError.from('inject', ESRCH, `thread ${this.tid}: no uffd taken`) });
    }
  }

  /** A step failed: restore + detach if the thread is stopped (it is between steps), else release from poll(). */
  private toRelease(): void {
    if (this.phase === 'finished') return;
    if (this.phase !== 'syscall' && this.saved) {
      try { this.restoreAndDetach(); return; } catch { /* killed meanwhile: reap below */ }
    }
    if (this.phase === 'syscall') {
      // Failed while stopped after a step (a register read, the rip check): the thread is stopped; restore it.
      try { this.phase = 'release'; if (this.saved) { this.u.ptraceSetRegs(this.tid, this.saved); this.saved = null; } } catch { /* gone */ }
    }
    this.phase = 'release';
    this.release();
  }

  /**
   * Leave the tracee: PTRACE_DETACH works only while it is stopped; one that is running gets there at its pending
   * interrupt, one that is exiting becomes a zombie only we (the tracer) can reap first. Bounded per call.
   */
  private release(): void {
    const C = this.u.constants;
    for (let i = 0; i < 4 && this.phase === 'release'; i++) {
      try {
        if (this.saved) { this.u.ptraceSetRegs(this.tid, this.saved); this.saved = null; }
        this.u.ptrace(C.PTRACE_DETACH, this.tid, 0, this.redeliver);
        this.phase = 'finished';
        this.settle({ kind: 'failed', error: this.error ?? SyscallError.from('inject', ESRCH, `thread ${this.tid} detached`) });
        return;
      } catch { /* not stopped (running or exiting): wait for it */ }
      const st = this.waitStop();
      if (st === null || st === 'gone') return;
      const sig = (st >> 8) & 0xff;
      if (st >> 16 === 0 && sig !== SIGTRAP && !this.redeliver) this.redeliver = sig;
    }
  }
}

function outcomeError(o: InjectionOutcome, tid: number): Error {
  if (o.kind === 'failed') return o.error;
  if (o.kind === 'abandoned') return SyscallError.from('inject', ETIMEDOUT, `thread ${tid} did not stop`);
  if (o.kind === 'died') return SyscallError.from('inject', ESRCH, `thread ${tid} died during injection (${o.step})`);
  if (o.kind === 'refused') return SyscallError.from('inject', EPERM, o.reason);
  return new Error('unreachable');
}

/** Synchronous injection into a thread that is not waiting on us (tests, tools): polls until the link is gone. */
export function injectUffd(pid: number, opts: { tid?: number; binding?: UffdBinding; timeoutMs?: number } = {}): InjectResult {
  const tid = opts.tid ?? pid;
  const inj = new Injection(pid, tid, { binding: opts.binding, stopTimeoutMs: opts.timeoutMs ?? 5000 });
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let out: InjectionOutcome | null = null;
  const end = performance.now() + (opts.timeoutMs ?? 5000) + 1000;
  while (!inj.finished && performance.now() < end) {
    out = inj.poll() ?? out;
    if (!inj.finished) Atomics.wait(nap, 0, 0, 0.05);
  }
  out = inj.poll() ?? out;
  if (out?.kind === 'injected') return out.result;
  throw out ? outcomeError(out, tid) : SyscallError.from('inject', ETIMEDOUT, `thread ${tid}: no outcome`);
}

/** Asynchronous injection: polled every `pollMs` from the event loop; resolves/rejects at the outcome. */
export function injectUffdAsync(pid: number, opts: { tid?: number; binding?: UffdBinding; pollMs?: number; timeoutMs?: number } = {}): Promise<InjectResult> {
  const tid = opts.tid ?? pid;
  const inj = new Injection(pid, tid, { binding: opts.binding, stopTimeoutMs: opts.timeoutMs });
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const o = inj.poll();
      if (o) { if (o.kind === 'injected') resolve(o.result); else reject(outcomeError(o, tid)); }
      // Keep polling after the outcome until the link is gone (an abandoned thread detached at its stop, a dead one reaped).
      if (!inj.finished) setTimeout(tick, inj.active ? opts.pollMs ?? 1 : 10);
    };
    tick();
  });
}
