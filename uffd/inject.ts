// ptrace injection of userfaultfd() into a client that did not hand one over (x86-64): seize + interrupt one thread,
// run `userfaultfd(O_CLOEXEC|O_NONBLOCK)` at a `syscall` instruction, take the fd with pidfd_getfd, run `close()` of
// the client's copy (it must not keep one: a client holding its uffd stays blocked forever if we die), restore every
// register, detach. ~1 ms once per client.
//
// Why asynchronous (beginInjection → poll → complete): a client thread blocked in OUR FUSE/CUSE request cannot reach
// a ptrace stop until we reply, so waiting for the stop synchronously on the JS thread that serves requests would
// deadlock. We seize + interrupt at once, then poll waitpid(WNOHANG) from the event loop while the transport replies;
// the interrupted thread stops at its syscall exit, before running user code (the "Injection order"), and
// the injection + registration run synchronously in that stop.
import * as fs from 'fs';
import { performance } from 'perf_hooks';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { SyscallError } from './errors';

const SYSCALL_INSN = [0x0f, 0x05];
/** waitpid status: stopped (0x7f in the low byte), stop signal in bits 8-15, ptrace event in bits 16-23. */
const isStopped = (st: number): boolean => (st & 0xff) === 0x7f;
const SIGTRAP = 5;

export interface InjectResult { fd: number; tid: number; ms: number; userModeOnly: boolean }

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
  throw SyscallError.from('inject', 3 /* ESRCH */, 'no syscall instruction found in the tracee');
}

/** An injection in progress: the thread is seized and interrupted; poll() until it stops, then it completes. */
export class Injection {
  private readonly u: UffdBinding;
  private readonly t0 = performance.now();
  private done = false;
  constructor(readonly pid: number, readonly tid: number, binding?: UffdBinding) {
    this.u = binding ?? loadUffd();
    const C = this.u.constants;
    this.u.ptrace(C.PTRACE_SEIZE, tid, 0, 0);
    try { this.u.ptrace(C.PTRACE_INTERRUPT, tid, 0, 0); } catch (e) { this.u.ptrace(C.PTRACE_DETACH, tid, 0, 0); throw e; }
  }

  /** Non-blocking: null while the thread has not stopped yet; else the injected uffd (ownership to the caller). */
  poll(): InjectResult | null {
    if (this.done) throw new Error('injection already completed');
    const C = this.u.constants;
    const w = this.u.waitpid(this.tid, C.WNOHANG | C.__WALL);
    if (w.pid === 0) return null;
    return this.inStop(w.status);
  }

  /** Blocking: only for a tracee known not to wait on us (tests, tools). */
  wait(): InjectResult {
    const C = this.u.constants;
    return this.inStop(this.u.waitpid(this.tid, C.__WALL).status);
  }

  private inStop(status: number): InjectResult {
    this.done = true;
    const u = this.u, C = u.constants, tid = this.tid;
    if (!isStopped(status)) throw SyscallError.from('inject', 3 /* ESRCH */, `thread ${tid} did not stop (status 0x${status.toString(16)})`);
    // A signal-delivery stop (not our interrupt trap): inject there too, re-deliver the signal at detach.
    const event = status >> 16;
    const sig = (status >> 8) & 0xff;
    const redeliver = event === 0 && sig !== SIGTRAP ? sig : 0;
    const saved = u.ptraceGetRegs(tid);
    let fdInTarget: number;
    let result: InjectResult | null = null;
    try {
      const at = findSyscallInsn(u, this.pid, Number(regs(u, saved).get('rip')));
      const call = (nr: number, ...args: number[]): number => {
        const r = regs(u, Buffer.from(saved));
        r.set('rax', BigInt(nr));
        r.set('orig_rax', -1n); // no syscall-restart fix-up of our rip/rax on resume
        r.set('rip', BigInt(at));
        ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'].forEach((f, i) => r.set(f, BigInt(args[i] ?? 0)));
        u.ptraceSetRegs(tid, r.buf);
        u.ptrace(C.PTRACE_SINGLESTEP, tid, 0, 0);
        const w = u.waitpid(tid, C.__WALL);
        if (!isStopped(w.status)) throw SyscallError.from('inject', 3, `thread ${tid} died during injection`);
        return Number(BigInt.asIntN(64, regs(u, u.ptraceGetRegs(tid)).get('rax')));
      };
      const flags = C.O_CLOEXEC | C.O_NONBLOCK;
      let userModeOnly = false;
      fdInTarget = call(C.SYS_userfaultfd, flags);
      if (fdInTarget < 0) { fdInTarget = call(C.SYS_userfaultfd, flags | C.UFFD_USER_MODE_ONLY); userModeOnly = true; }
      if (fdInTarget < 0) throw SyscallError.from('inject userfaultfd', -fdInTarget, `in pid ${this.pid}`);
      let mine = -1;
      try {
        const pidfd = u.pidfdOpen(this.pid);
        try { mine = u.pidfdGetfd(pidfd, fdInTarget); } finally { u.close(pidfd); }
      } finally {
        call(C.SYS_close, fdInTarget); // never leave the client its own copy, taken or not
      }
      result = { fd: mine, tid, ms: performance.now() - this.t0, userModeOnly };
    } finally {
      // Failure or not: the client gets its registers back and runs on.
      try { u.ptraceSetRegs(tid, saved); } catch { /* thread gone */ }
      try { u.ptrace(C.PTRACE_DETACH, tid, 0, redeliver); } catch { /* thread gone */ }
    }
    return result!;
  }

  /** Give up (e.g. the client exited): detach if still attached. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    try { this.u.ptrace(this.u.constants.PTRACE_DETACH, this.tid, 0, 0); } catch { /* not stopped or gone: exit/exec of the tracer detaches */ }
  }
}

/** Synchronous injection into a thread that is not waiting on us (tests, tools). */
export function injectUffd(pid: number, opts: { tid?: number; binding?: UffdBinding } = {}): InjectResult {
  return new Injection(pid, opts.tid ?? pid, opts.binding).wait();
}

/** Asynchronous injection: resolves once the thread stopped (poll every `pollMs` from the event loop). */
export function injectUffdAsync(pid: number, opts: { tid?: number; binding?: UffdBinding; pollMs?: number; timeoutMs?: number } = {}): Promise<InjectResult> {
  const inj = new Injection(pid, opts.tid ?? pid, opts.binding);
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      try {
        const r = inj.poll();
        if (r) return resolve(r);
        if (Date.now() > deadline) { inj.cancel(); return reject(SyscallError.from('inject', 110 /* ETIMEDOUT */, `thread ${opts.tid ?? pid} never stopped`)); }
        setTimeout(tick, opts.pollMs ?? 1);
      } catch (e) { reject(e); }
    };
    tick();
  });
}
