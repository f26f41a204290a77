// Fetches Debian's stock kernel (CUSE=m, FUSE=m, 9p=m) into tools/vm/cache/ without installing it into /boot.
// The ABI package name changes with security updates, so it is resolved through the linux-image-amd64 metapackage.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One unpacked kernel package: what the VM boots and where its modules live. */
export interface KernelInfo {
  /** Debian package name, e.g. linux-image-6.1.0-56-amd64 (the cache key). */
  pkg: string;
  /** Kernel release (uname -r), e.g. 6.1.0-56-amd64. */
  release: string;
  /** Root of the unpacked package. */
  root: string;
  vmlinuz: string;
  /** <root>/lib/modules/<release>, holding modules.dep. */
  modulesDir: string;
}

export interface KernelOptions {
  /** Cache root; default tools/vm/cache of the repo. */
  cacheDir?: string;
  /** Exact package to use instead of resolving linux-image-amd64 (env VM_KERNEL_PKG does the same). */
  pkg?: string;
  log?: (line: string) => void;
}

const METAPACKAGE = 'linux-image-amd64';
const APT_TIMEOUT_MS = 300_000; // apt-get update/download of a ~70 MB package; never hang CI
const QUICK_TIMEOUT_MS = 60_000;

/** Repo root: the nearest ancestor of this file holding package.json (works from tools/vm and dist/tools/vm). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'tools', 'vm'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`vm: cannot find the repo root above ${__dirname}`);
    dir = up;
  }
}

export function defaultCacheDir(): string {
  return process.env.VM_CACHE_DIR || path.join(repoRoot(), 'tools', 'vm', 'cache');
}

function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      cwd: opts.cwd,
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? QUICK_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    const err = e as { code?: string; status?: number | null; signal?: string | null; stderr?: string; message: string };
    if (err.code === 'ENOENT') throw new Error(`vm: \`${cmd}\` is not installed (run scripts/setup.sh)`);
    const why = err.signal ? `killed by ${err.signal} (timeout?)` : `exit ${err.status}`;
    throw new Error(`vm: \`${cmd} ${args.join(' ')}\` failed: ${why}\n${(err.stderr ?? '').trim()}`);
  }
}

/** `apt-cache depends linux-image-amd64` → linux-image-<abi>-amd64, or undefined when apt knows nothing. */
function resolveFromApt(): string | undefined {
  let out: string;
  try {
    out = run('apt-cache', ['depends', METAPACKAGE]);
  } catch {
    return undefined;
  }
  const m = /^\s*Depends:\s*(linux-image-\S+)\s*$/m.exec(out);
  return m ? m[1] : undefined;
}

function cachedPackages(kernelsDir: string): string[] {
  if (!fs.existsSync(kernelsDir)) return [];
  return fs
    .readdirSync(kernelsDir)
    .filter((d) => d.startsWith('linux-image-') && fs.existsSync(path.join(kernelsDir, d, '.complete')))
    .sort();
}

/** Reads an unpacked kernel tree; runs depmod when the package ships no modules.dep (Debian generates it in postinst). */
function describe(pkg: string, root: string): KernelInfo {
  const modRoot = path.join(root, 'lib', 'modules');
  const releases = fs.existsSync(modRoot) ? fs.readdirSync(modRoot) : [];
  if (releases.length !== 1) throw new Error(`vm: expected one release under ${modRoot}, found [${releases.join(', ')}]`);
  const release = releases[0];
  const vmlinuz = path.join(root, 'boot', `vmlinuz-${release}`);
  if (!fs.existsSync(vmlinuz)) throw new Error(`vm: ${pkg} has no ${vmlinuz}`);
  const modulesDir = path.join(modRoot, release);
  if (!fs.existsSync(path.join(modulesDir, 'modules.dep'))) run('depmod', ['-b', root, release], { timeoutMs: 120_000 });
  return { pkg, release, root, vmlinuz, modulesDir };
}

/**
 * Returns the unpacked kernel, downloading it on first use (apt-get download + dpkg-deb -x, ~70 MB, a few seconds).
 * Throws a message naming the missing piece when the package cannot be had; callers must fail, not skip.
 */
export function ensureKernel(opts: KernelOptions = {}): KernelInfo {
  const log = opts.log ?? (() => {});
  const kernelsDir = path.join(opts.cacheDir ?? defaultCacheDir(), 'kernel');
  let pkg = opts.pkg ?? process.env.VM_KERNEL_PKG ?? resolveFromApt();
  if (!pkg) {
    const cached = cachedPackages(kernelsDir);
    if (cached.length) {
      pkg = cached[cached.length - 1];
      log(`vm: apt-cache knows no ${METAPACKAGE}; using cached ${pkg}`);
    } else {
      log(`vm: apt-cache knows no ${METAPACKAGE}; running apt-get update`);
      run('apt-get', ['update', '-qq'], { timeoutMs: APT_TIMEOUT_MS });
      pkg = resolveFromApt();
      if (!pkg)
        throw new Error(
          `vm: cannot resolve the kernel: \`apt-cache depends ${METAPACKAGE}\` names no linux-image-* package even after apt-get update`,
        );
    }
  }
  if (!/^linux-image-[A-Za-z0-9.+~-]+$/.test(pkg)) throw new Error(`vm: odd kernel package name '${pkg}'`);
  const root = path.join(kernelsDir, pkg);
  if (fs.existsSync(path.join(root, '.complete'))) return describe(pkg, root);

  // Download + unpack into a private temp dir, then rename: parallel test processes may race here.
  fs.mkdirSync(kernelsDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(kernelsDir, `.tmp-${pkg}-`));
  try {
    log(`vm: apt-get download ${pkg}`);
    try {
      run('apt-get', ['download', '-q', pkg], { cwd: tmp, timeoutMs: APT_TIMEOUT_MS });
    } catch (e) {
      throw new Error(
        `vm: cannot download kernel package ${pkg} (is the Debian mirror reachable? try \`apt-get update\`): ${(e as Error).message}`,
      );
    }
    const deb = fs.readdirSync(tmp).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`vm: apt-get download ${pkg} left no .deb in ${tmp}`);
    const tree = path.join(tmp, 'tree');
    log(`vm: dpkg-deb -x ${deb}`);
    run('dpkg-deb', ['-x', path.join(tmp, deb), tree], { timeoutMs: APT_TIMEOUT_MS });
    describe(pkg, tree); // validates + depmod before publishing
    fs.writeFileSync(path.join(tree, '.complete'), `${deb}\n`);
    try {
      fs.renameSync(tree, root);
    } catch (e) {
      if (!fs.existsSync(path.join(root, '.complete'))) throw e; // lost a race to a complete copy: fine
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return describe(pkg, root);
}
