// The lines `serve` and `doctor` print about who may open the node and whom the server injects into.
import { formatPerms, resolveNodePerms, systemIds } from '../cuse-dev/transport/node-perms';
import { InjectPolicy } from '../uffd/inject-policy';
import type { CliServeOptions } from './options';

/** What `serve` (and `doctor`, for the defaults) tells about ptrace injection with these options. */
export function injectionLine(opts: Pick<CliServeOptions, 'inject' | 'injectUids' | 'watch'>): string {
  if (opts.inject === false) return 'injection: off (--no-inject): clients without the preload library are watched through /proc';
  if (opts.watch === 'proc' || opts.watch === 'none') return `injection: none (--watch ${opts.watch})`;
  return `injection: ${new InjectPolicy(opts.injectUids).describe((uid) => systemIds.lookup('passwd', String(uid))?.name)}`;
}

/** doctor: the defaults on this host and the options that change them. */
export function policyLines(): string[] {
  return [
    `node permissions by default: ${formatPerms(resolveNodePerms({}))}; --owner, --group, --mode-bits change them`,
    `${injectionLine({})}; --inject-uid USER[,USER...] allows more uids, --no-inject none`,
  ];
}
