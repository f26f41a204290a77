// argv → options for serve/run (shared), with usage errors as thrown UsageError.
import type { ServeOptions } from '../cuse-dev/transport/common';
import type { TransportChoice } from '../cuse-dev/transport/auto';
import { deviceAxes } from '../cuse-dev/transport/common';
import { resolveId, resolveUids, systemIds, type IdDb } from '../cuse-dev/transport/node-perms';
import { UAPI_NAMES } from '../core';
import { FAULT_GRAMMAR, parseFaultRule } from '../cuse-dev/fault/rules';

export class UsageError extends Error {}

/** The transport's options without the worker entry (startServer adds the composition root's). */
export interface CliServeOptions extends Omit<ServeOptions, 'workerEntry'> { transport: TransportChoice }

export const USAGE = `usage:
  virtgpu-emu serve [--transport auto|cuse|fuse] [--path P] [--minor N] [--uapi NAME] [--mode notifier|pin]
                    [--watch auto|uffd|proc|none] [--trace FILE] [--bind] [--mount-dir DIR]
                    [--owner USER] [--group GROUP] [--mode-bits 0660] [--profile NAME]
                    [--no-inject] [--inject-uid USER[,USER...]] [--fault RULE]...
  virtgpu-emu run [serve options] -- CMD [ARGS...]
  virtgpu-emu doctor
  virtgpu-emu demo
  virtgpu-emu matrix      every create_blob layout against every --uapi revision over FUSE (Markdown)
  virtgpu-emu report TRACE [--perfetto OUT.json] [--html OUT.html] [--partial]
                          read a --trace file (docs/trace-format.md); with no output, count its records
  virtgpu-emu replay TRACE [--uapi NAME] [--partial]
                          re-issue a recorded session in process and list every difference (exit 1 if any);
                          --uapi: under another revision than the recorded one
--uapi: the kernel revision whose uAPI the node speaks: ${UAPI_NAMES.join('|')} (default v1; see docs/uapi-revisions.md).
--mode pin: the revision's structs and errnos without dedup and notifier (alone: v1's struct with the later
  revisions' lifetime); --mode notifier only where the revision has a notifier (v1, libhsakmt-72).
${FAULT_GRAMMAR}`;

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${name} must be one of ${allowed.join('|')}, got "${v}"`);
  return v as T;
}

/** A user or group name/number → its id, as a usage error when unknown. */
function idOf(name: string, db: 'passwd' | 'group', v: string, ids: IdDb): number {
  try { return resolveId(db, v, ids); } catch (e) { throw new UsageError(`${name}: ${(e as Error).message}`); }
}

/** Parse serve options; stops at "--" and returns the rest. Users and groups are resolved through `ids` (getent). */
export function parseServe(argv: string[], ids: IdDb = systemIds): { opts: CliServeOptions; rest: string[] } {
  const opts: CliServeOptions = { transport: 'auto' };
  let i = 0;
  for (; i < argv.length; i++) {
    let a = argv[i]!;
    if (a === '--') { i++; break; }
    let val: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
    const next = (): string => {
      if (val !== undefined) return val;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--transport': opts.transport = oneOf(a, next(), ['auto', 'cuse', 'fuse'] as const); break;
      case '--path': opts.path = next(); break;
      case '--minor': {
        const n = Number(next());
        if (!Number.isInteger(n) || n < 0 || n > 1048575) throw new UsageError('--minor must be an integer');
        opts.minor = n; break;
      }
      case '--mode': opts.mode = oneOf(a, next(), ['notifier', 'pin'] as const); break;
      case '--watch': opts.watch = oneOf(a, next(), ['auto', 'uffd', 'proc', 'none'] as const); break;
      case '--trace': opts.trace = next(); break;
      case '--fault': {
        const v = next();
        try { parseFaultRule(v); } catch (e) { throw new UsageError((e as Error).message); }
        opts.faults = [...(opts.faults ?? []), v]; break;
      }
      case '--mode-bits': {
        const v = next();
        if (!/^0?[0-7]{1,4}$/.test(v)) throw new UsageError(`--mode-bits must be octal like 0666, got "${v}"`);
        opts.modeBits = parseInt(v, 8); break;
      }
      case '--bind': opts.bind = true; break;
      case '--no-inject': opts.inject = false; break;
      case '--inject-uid': {
        const v = next();
        let uids: number[];
        try { uids = resolveUids(v, ids); } catch (e) { throw new UsageError(`${a}: ${(e as Error).message}`); }
        if (!uids.length) throw new UsageError(`${a} needs users (names or numbers, comma-separated)`);
        opts.injectUids = [...(opts.injectUids ?? []), ...uids]; break;
      }
      case '--owner': opts.owner = idOf(a, 'passwd', next(), ids); break;
      case '--group': opts.group = idOf(a, 'group', next(), ids); break;
      case '--mount-dir': opts.mountDir = next(); break;
      case '--profile': opts.profile = next(); break;
      case '--uapi': opts.uapi = oneOf(a, next(), UAPI_NAMES); break;
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  try { deviceAxes(opts); } catch (e) { throw new UsageError((e as Error).message); }
  return { opts, rest: argv.slice(i) };
}
