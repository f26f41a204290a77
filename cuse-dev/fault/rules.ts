// `--fault RULE` (serve, run, and openDevice({faults}) in process): the grammar, its parser, and the engine that
// counts calls and fires — an ioctl failing with an errno (its Nth call, every call, or each with probability p), a
// forced invalidation of a client's range at an ioctl, a host command the host refuses, a submission's fence
// signalled late. Every firing is a `fault` trace record and one log line per rule. docs/faults.md has the grammar
// with examples.
import { constants } from 'os';
import { errnoOf, type Errno, type FaultAction, type FaultHooks, type Host, type HostCommand, type HostCommandName, type IoctlSite, type NotifierEvent, type TraceEvent } from '../../core';
import { virtgpuTableFor, UAPI, DEFAULT_UAPI } from '../../core';
import { FenceDelays } from './fence-delay';

export class FaultRuleError extends Error {}

/** When a rule fires among the calls it counts: the Nth (1-based), every one, or each with probability p. */
export type When = { nth: number } | { every: true } | { p: number };

export type FaultRule =
  | { kind: 'ioctl'; text: string; name: string; when: When; errno: Errno }
  | { kind: 'invalidate'; text: string; name: string; nth: number; range: { start: number; end: number } | 'last-bo'; event: 'UNMAP' | 'CLEAR' }
  | { kind: 'host'; text: string; cmd: HostCommandName; when: When; errno: Errno }
  | { kind: 'fence'; text: string; when: When; delayMs: number };

export const HOST_COMMANDS: readonly HostCommandName[] = ['CTX_CREATE', 'CTX_DESTROY', 'RESOURCE_CREATE_BLOB', 'RESOURCE_CREATE_3D', 'CTX_ATTACH_RESOURCE', 'CTX_DETACH_RESOURCE', 'RESOURCE_UNREF', 'SUBMIT_3D', 'TRANSFER_TO_HOST_3D', 'TRANSFER_FROM_HOST_3D'];

export const FAULT_GRAMMAR = `--fault RULE (repeatable; fields separated by ":"):
  ioctl:NAME:nth=N|every|p=P:errno=E      fail the Nth / every / a random p of ioctl NAME with errno E
  invalidate:NAME#N:range=A-B|last-bo[:event=UNMAP|CLEAR]
                                           at the Nth ioctl NAME, the caller's range [A, B) (hex) or its last
                                           userptr BO is invalidated first, as if the client had unmapped it
  host:CMD:nth=N|every|p=P:errno=E        the host refuses host command CMD
  fence:nth=N|every|p=P:delay=MS          the Nth / every / a random p of the fenced submissions (EXECBUFFER)
                                           signals its fence MS ms after the host completed it (later fences of
                                           the same context and ring wait for it)
  seed=S                                   the random rules' seed (default 1)
NAME: an ioctl as the trace names it, with or without DRM_IOCTL_ / DRM_IOCTL_VIRTGPU_ (RESOURCE_CREATE_BLOB).`;

/** Every ioctl name any revision serves (the rules are parsed before the device exists). */
function ioctlNames(): Set<string> {
  const names = new Set<string>();
  for (const u of Object.values(UAPI)) for (const r of virtgpuTableFor(u).all()) names.add(r.name);
  if (names.size === 0) for (const r of virtgpuTableFor(UAPI[DEFAULT_UAPI]).all()) names.add(r.name);
  return names;
}
let known: Set<string> | null = null;

function ioctlName(text: string, v: string): string {
  known ??= ioctlNames();
  const up = v.toUpperCase();
  for (const n of [up, `DRM_IOCTL_VIRTGPU_${up}`, `DRM_IOCTL_${up}`]) if (known.has(n)) return n;
  throw new FaultRuleError(`--fault ${text}: unknown ioctl ${v} (one of ${[...known].map((n) => n.replace(/^DRM_IOCTL_(VIRTGPU_)?/, '')).join(', ')})`);
}

function errnoNamed(text: string, v: string | undefined): Errno {
  if (!v) throw new FaultRuleError(`--fault ${text}: needs errno=NAME (e.g. errno=ENOMEM)`);
  const n = (constants.errno as Record<string, number>)[v.toUpperCase()];
  if (typeof n !== 'number') throw new FaultRuleError(`--fault ${text}: unknown errno ${v}`);
  return errnoOf(n);
}

function whenOf(text: string, f: Map<string, string>, flags: Set<string>): When {
  const given = [f.has('nth'), flags.has('every'), f.has('p')].filter(Boolean).length;
  if (given !== 1) throw new FaultRuleError(`--fault ${text}: say when, once: nth=N, every or p=P`);
  if (flags.has('every')) return { every: true };
  if (f.has('nth')) {
    const n = Number(f.get('nth'));
    if (!Number.isInteger(n) || n < 1) throw new FaultRuleError(`--fault ${text}: nth must be an integer ≥ 1`);
    return { nth: n };
  }
  const p = Number(f.get('p'));
  if (!(p > 0 && p <= 1)) throw new FaultRuleError(`--fault ${text}: p must be in (0, 1]`);
  return { p };
}

/** The longest fence delay: a timer's limit (2^31 - 1 ms, about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

const hexNum = (s: string): number => (/^(0x)?[0-9a-f]+$/i.test(s) ? parseInt(s.replace(/^0x/i, ''), 16) : NaN);

/** Parse one rule; a `seed=S` rule returns the seed. */
export function parseFaultRule(text: string): FaultRule | { kind: 'seed'; seed: number } {
  const parts = text.split(':');
  const kind = parts[0];
  const f = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq > 0) f.set(p.slice(0, eq), p.slice(eq + 1));
    else if (p === 'every') flags.add(p);
    else positional.push(p);
  }
  const allow = (keys: string[]): void => {
    for (const k of f.keys()) if (!keys.includes(k)) throw new FaultRuleError(`--fault ${text}: unknown field ${k}=`);
  };
  switch (kind) {
    case 'ioctl': {
      if (positional.length !== 1) throw new FaultRuleError(`--fault ${text}: ioctl:NAME:… names one ioctl`);
      allow(['nth', 'p', 'errno']);
      return { kind, text, name: ioctlName(text, positional[0]!), when: whenOf(text, f, flags), errno: errnoNamed(text, f.get('errno')) };
    }
    case 'invalidate': {
      const at = /^([A-Za-z0-9_]+)#(\d+)$/.exec(positional[0] ?? '');
      if (positional.length !== 1 || !at) throw new FaultRuleError(`--fault ${text}: invalidate:NAME#N:… names the Nth call of an ioctl`);
      allow(['range', 'event']);
      const nth = Number(at[2]);
      if (nth < 1) throw new FaultRuleError(`--fault ${text}: N must be ≥ 1`);
      const r = f.get('range');
      let range: { start: number; end: number } | 'last-bo';
      if (r === 'last-bo') range = 'last-bo';
      else {
        const m = /^([^-]+)-([^-]+)$/.exec(r ?? '');
        const start = m ? hexNum(m[1]!) : NaN, end = m ? hexNum(m[2]!) : NaN;
        if (!(start >= 0 && end > start && end <= Number.MAX_SAFE_INTEGER)) throw new FaultRuleError(`--fault ${text}: range must be A-B (hex, A < B) or last-bo`);
        range = { start, end };
      }
      const event = (f.get('event') ?? 'UNMAP').toUpperCase();
      if (event !== 'UNMAP' && event !== 'CLEAR') throw new FaultRuleError(`--fault ${text}: event must be UNMAP or CLEAR`);
      return { kind, text, name: ioctlName(text, at[1]!), nth, range, event };
    }
    case 'host': {
      const cmd = (positional[0] ?? '').toUpperCase() as HostCommandName;
      if (positional.length !== 1 || !HOST_COMMANDS.includes(cmd)) throw new FaultRuleError(`--fault ${text}: host:CMD:… names one of ${HOST_COMMANDS.join(', ')}`);
      allow(['nth', 'p', 'errno']);
      return { kind, text, cmd, when: whenOf(text, f, flags), errno: errnoNamed(text, f.get('errno')) };
    }
    case 'fence': {
      if (positional.length) throw new FaultRuleError(`--fault ${text}: fence:… takes nth=N|every|p=P and delay=MS, no name (${positional.join(':')})`);
      allow(['nth', 'p', 'delay']);
      const when = whenOf(text, f, flags);
      const d = f.get('delay');
      const delayMs = /^\d+$/.test(d ?? '') ? Number(d) : NaN;
      if (!(delayMs >= 1 && delayMs <= MAX_DELAY_MS)) throw new FaultRuleError(`--fault ${text}: needs delay=MS, an integer from 1 to ${MAX_DELAY_MS} (milliseconds)`);
      return { kind, text, when, delayMs };
    }
    default: {
      const s = /^seed=(\d+)$/.exec(text);
      if (s) return { kind: 'seed', seed: Number(s[1]) };
      throw new FaultRuleError(`--fault ${text}: unknown rule kind "${kind}"\n${FAULT_GRAMMAR}`);
    }
  }
}

export interface FaultSet { rules: FaultRule[]; seed: number; texts: string[] }

/** Parse every `--fault` given (throws FaultRuleError naming the bad one). */
export function parseFaults(texts: readonly string[]): FaultSet {
  const rules: FaultRule[] = [];
  let seed = 1;
  for (const t of texts) {
    const r = parseFaultRule(t);
    if (r.kind === 'seed') seed = r.seed; else rules.push(r);
  }
  return { rules, seed, texts: [...texts] };
}

/** Mixed into the seed for the fence rules' generator (any odd constant: a stream of its own). */
const FENCE_STREAM = 0x9e3779b9;

export type FaultTrace = (ev: TraceEvent) => void;

/**
 * The engine: counts each rule's calls (per rule, across clients), fires, reports. `lastBo` names a client's most
 * recent userptr BO range (from the trace's userptr records, which the engine watches through `observe`).
 */
export class FaultEngine implements FaultHooks {
  private readonly counts = new Map<FaultRule, number>();
  /** The generators' states: the ioctl and host rules' one, the fence rules' own (so a fence rule added to a set
   * changes no other rule's firings, and replay, which re-runs the host rules only, draws as the recording did). */
  private readonly state: { rules: number; fences: number };
  private readonly lastBo = new Map<number, { start: number; end: number }>();
  private readonly told = new Set<FaultRule>();
  fired = 0;

  constructor(readonly set: FaultSet, private readonly trace?: FaultTrace, private readonly log?: (m: string) => void) {
    const seed = set.seed >>> 0 || 1;
    this.state = { rules: seed, fences: (seed ^ FENCE_STREAM) >>> 0 || 1 };
  }

  /** mulberry32: the random rules repeat with the seed. */
  private random(stream: 'rules' | 'fences'): number {
    let t = (this.state[stream] = (this.state[stream] + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  private hits(rule: FaultRule, when: When | { nth: number }): boolean {
    const n = (this.counts.get(rule) ?? 0) + 1;
    this.counts.set(rule, n);
    if ('nth' in when) return n === when.nth;
    if ('every' in when) return true;
    return this.random(rule.kind === 'fence' ? 'fences' : 'rules') < when.p;
  }

  private report(rule: FaultRule, rec: { file?: number; pid?: number; name?: string; errno?: string; detail?: string }): void {
    this.fired++;
    this.trace?.({ t: 'fault', rule: rule.text, kind: rule.kind, ...rec });
    if (!this.told.has(rule)) {
      this.told.add(rule);
      this.log?.(`fault ${rule.text} fired: ${rec.name ?? ''}${rec.errno ? ` -> ${rec.errno}` : ''}${rec.detail ? ` (${rec.detail})` : ''} (further firings of this rule are in the trace only)`);
    }
  }

  /** Wrap the trace sink so the engine sees userptr creates (for range=last-bo); returns the wrapped sink. */
  observe<T extends { t: string }>(sink: ((ev: T) => void) | undefined): ((ev: T) => void) | undefined {
    if (!this.set.rules.some((r) => r.kind === 'invalidate' && r.range === 'last-bo')) return sink;
    return (ev: T) => {
      const u = ev as unknown as { t: string; pid: number; addr: number; size: number; result: unknown };
      if (u.t === 'userptr' && u.result === 0) this.lastBo.set(u.pid, { start: u.addr - (u.addr % 4096), end: Math.ceil((u.addr + u.size) / 4096) * 4096 });
      sink?.(ev);
    };
  }

  ioctl(at: IoctlSite): FaultAction | undefined {
    let act: FaultAction | undefined;
    for (const rule of this.set.rules) {
      if (rule.kind === 'ioctl' && rule.name === at.name && !act?.fail && this.hits(rule, rule.when)) {
        (act ??= {}).fail = rule.errno;
        this.report(rule, { file: at.file, pid: at.pid, name: at.name, errno: rule.errno.code });
      } else if (rule.kind === 'invalidate' && rule.name === at.name && this.hits(rule, { nth: rule.nth })) {
        const r = rule.range === 'last-bo' ? this.lastBo.get(at.pid) : rule.range;
        if (!r) { this.report(rule, { file: at.file, pid: at.pid, name: at.name, detail: 'no userptr BO of this client yet: nothing invalidated' }); continue; }
        const ev: NotifierEvent = { event: rule.event, start: r.start, end: r.end, removed: rule.event === 'CLEAR' ? true : undefined, note: `fault ${rule.text}` };
        ((act ??= {}).events ??= []).push(ev);
        this.report(rule, { file: at.file, pid: at.pid, name: at.name, detail: `${rule.event} [0x${r.start.toString(16)}, 0x${r.end.toString(16)})` });
      }
    }
    return act;
  }

  /**
   * The host behind the rules: a refused command is not executed (the driver logs the error response); a delayed
   * fence reaches the device's completion callback late, the later fences of its context and ring after it.
   */
  wrapHost(host: Host): Host {
    const rules = this.set.rules.filter((r): r is Extract<FaultRule, { kind: 'host' }> => r.kind === 'host');
    const fenceRules = this.set.rules.filter((r): r is Extract<FaultRule, { kind: 'fence' }> => r.kind === 'fence');
    if (rules.length === 0 && fenceRules.length === 0) return host;
    const delays = fenceRules.length ? new FenceDelays((ms, cb) => { setTimeout(cb, ms).unref(); }) : undefined;
    let fenceDone: ((fenceId: number) => void) | undefined;
    const complete = (id: number): void => { if (delays) delays.completed(id); else fenceDone?.(id); };
    const wrapped: Host = {
      submit: (c: HostCommand) => {
        const fenceId = c.cmd === 'SUBMIT_3D' ? c.fenceId : undefined;
        if (delays && c.cmd === 'SUBMIT_3D' && fenceId) delays.submitted(fenceId, c.ctxId, c.ringIdx, this.fenceDelay(fenceRules, c.ctxId, c.ringIdx, fenceId));
        for (const rule of rules) {
          if (rule.cmd === c.cmd && this.hits(rule, rule.when)) {
            this.report(rule, { name: c.cmd, errno: rule.errno.code, detail: 'the host answered with an error; the driver logs it, as for every command it does not wait on' });
            // A refused command is answered with an error, as a host's error response: its fence (if any) still completes.
            if (fenceId) complete(fenceId);
            return;
          }
        }
        host.submit(c);
        // A host that reports no completions completed it as it took it (what the device does for such a host).
        if (delays && fenceId && !host.attach) delays.completed(fenceId);
      },
    };
    // Everything else is the wrapped host's own (completion, blob memory, contexts, snapshots).
    if (host.attach || delays) wrapped.attach = (done) => { fenceDone = done; delays?.bind(done); host.attach?.(complete); };
    if (host.attachMemory) wrapped.attachMemory = (resId, memory) => host.attachMemory!(resId, memory);
    if (host.retainedBytes) wrapped.retainedBytes = () => host.retainedBytes!();
    if (host.attachContext) wrapped.attachContext = (ctxId, client) => host.attachContext!(ctxId, client);
    if (host.objects) wrapped.objects = () => host.objects!();
    if (host.counts) wrapped.counts = () => host.counts!();
    return wrapped;
  }

  /** The delay of a fenced submission: the first fence rule that fires on it (the rules after it do not count that
   * submission, as for the ioctl rules). */
  private fenceDelay(rules: Extract<FaultRule, { kind: 'fence' }>[], ctxId: number, ringIdx: number, fenceId: number): number {
    for (const rule of rules) {
      if (!this.hits(rule, rule.when)) continue;
      this.report(rule, { name: 'SUBMIT_3D', detail: `fence ${fenceId} of context ${ctxId} ring ${ringIdx}: signalled ${rule.delayMs} ms after the host completes it` });
      return rule.delayMs;
    }
    return 0;
  }
}
