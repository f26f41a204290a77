import * as path from 'path';
import { SyscallError } from './errors';
import type { UffdBinding } from './native-types';

const ADDON_FILE = 'virtgpu_uffd.node';

export interface LoadUffdOptions {
  /** Use this binding as is (tests, fakes); nothing is loaded from disk. */
  binding?: UffdBinding;
  /** Replace the default candidate paths (absolute or relative to cwd). */
  paths?: readonly string[];
}

/**
 * Candidate addon paths. At runtime __dirname is <root>/dist/uffd (two levels up is the package root); when run
 * from source it is <root>/uffd (one level up).
 */
export function defaultAddonPaths(dir: string = __dirname): string[] {
  const roots = [path.resolve(dir, '..', '..'), path.resolve(dir, '..')];
  const out: string[] = [];
  for (const root of roots) {
    for (const flavour of ['Release', 'Debug']) {
      const p = path.join(root, 'build', flavour, ADDON_FILE);
      if (!out.includes(p)) out.push(p);
    }
  }
  return out;
}

/**
 * Loads the native addon (or returns opts.binding) and makes its failures SyscallError on this JS thread.
 * On failure throws an Error listing every path tried with its error.
 */
export function loadUffd(opts: LoadUffdOptions = {}): UffdBinding {
  if (opts.binding) {
    opts.binding.setErrorConstructor?.(SyscallError);
    return opts.binding;
  }
  const tried: string[] = [];
  for (const p of opts.paths ?? defaultAddonPaths()) {
    const abs = path.resolve(p);
    try {
      const binding = require(abs) as UffdBinding;
      binding.setErrorConstructor?.(SyscallError);
      return binding;
    } catch (e) {
      tried.push(`  ${abs}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  throw new Error(
    `cannot load the ${ADDON_FILE} addon; tried:\n${tried.join('\n')}\n` +
      '(build it with `npm install`, which runs node-gyp rebuild for binding.gyp)',
  );
}
