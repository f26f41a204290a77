import * as path from 'path';
import { SyscallError } from './errors';
import type { TestkitBinding, UffdBinding } from './native-types';

const ADDON_FILE = 'virtgpu_uffd.node';
const TESTKIT_FILE = 'virtgpu_testkit.node';

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
export function defaultAddonPaths(dir: string = __dirname, file: string = ADDON_FILE): string[] {
  const roots = [path.resolve(dir, '..', '..'), path.resolve(dir, '..')];
  const out: string[] = [];
  for (const root of roots) {
    for (const flavour of ['Release', 'Debug']) {
      const p = path.join(root, 'build', flavour, file);
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
  return loadAddon<UffdBinding>(ADDON_FILE, opts.paths ?? defaultAddonPaths());
}

/** One addon file from the first path that loads, its failures made SyscallError on this JS thread. */
function loadAddon<T extends { setErrorConstructor?(ctor: typeof SyscallError): void }>(file: string, paths: readonly string[]): T {
  const tried: string[] = [];
  for (const p of paths) {
    const abs = path.resolve(p);
    try {
      const binding = require(abs) as T;
      binding.setErrorConstructor?.(SyscallError);
      return binding;
    } catch (e) {
      tried.push(`  ${abs}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  throw new Error(
    `cannot load the ${file} addon; tried:\n${tried.join('\n')}\n` +
      '(build it with `npm install`, which runs node-gyp rebuild for binding.gyp)',
  );
}

/** The production binding plus the test kit (virtgpu_testkit: mmap & co., peek/poke, ioctl, forkChild) for tests and bench. */
export type TestBinding = UffdBinding & TestkitBinding & { readonly constants: UffdBinding['constants'] & TestkitBinding['constants'] };

/** Tests and bench only: the production binding merged with the test-kit addon, constants included. */
export function loadTestkit(opts: LoadUffdOptions = {}): TestBinding {
  const u = loadUffd(opts);
  const kit = loadAddon<TestkitBinding>(TESTKIT_FILE, defaultAddonPaths(__dirname, TESTKIT_FILE));
  return { ...u, ...kit, constants: { ...u.constants, ...kit.constants } };
}
