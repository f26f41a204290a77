// Runs one command inside a throwaway qemu VM whose root is the host's / (read-only 9p), with real CUSE.
// Results come back over the serial console; a writable job dir (9p, same path as on the host) carries files.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureKernel, KernelInfo } from './kernel';
import { buildInitramfs, HOST_TAG, InitramfsInfo, JOB_TAG } from './initramfs';

export { ensureKernel, repoRoot, defaultCacheDir } from './kernel';
export type { KernelInfo } from './kernel';
export { buildInitramfs, moduleLoadOrder, GUEST_MODULES } from './initramfs';
export type { InitramfsInfo } from './initramfs';

export interface RunInVmOptions {
  /** argv (exec'd, no shell) or a shell script (run by the host's /bin/sh inside the chroot). */
  command: string[] | string;
  /** Working directory inside the VM (host paths are the same; read-only unless under a writable share). */
  cwd: string;
  /** Extra environment; merged over the base env (PATH from the host, HOME=/root, LANG=C.UTF-8, TERM=dumb). */
  env?: Record<string, string>;
  /** Hard wall-clock limit for the whole VM run, boot included; qemu is SIGKILLed when it expires. */
  timeoutMs: number;
  /** Console output as it arrives (CR stripped), boot messages included; use it to show progress in CI logs. */
  onOutput?: (chunk: string) => void;
  /** Only the command's own output as it arrives, line-buffered (boot noise and markers filtered out). */
  onCommandOutput?: (chunk: string) => void;
  /** Extra host directories shared writable at the same path in the guest. */
  writableDirs?: string[];
  /** Keep the job dir (VM_JOB_DIR) after the run; default: removed. */
  keepJobDir?: boolean;
  /** Guest memory in MiB; default 2048. */
  memoryMiB?: number;
}

export interface RunInVmResult {
  /** The command's exit status (128+N when killed by signal N). */
  exitCode: number;
  /** Console text the command printed (stdout+stderr interleaved, CR stripped), between the start and exit markers. */
  output: string;
  /** Everything the console printed, boot included. */
  console: string;
  /** Host ms from spawning qemu to the guest being ready to run the command. */
  bootMs: number;
  /** Host ms from spawning qemu to qemu exiting. */
  totalMs: number;
  /** Job dir on the host (same path in the guest, writable there); only still present with keepJobDir. */
  jobDir: string;
  accel: 'kvm' | 'tcg';
}

/** Failure of the VM itself (not of the command): timeout, qemu crash, boot failure. Carries the console. */
export class VmError extends Error {
  constructor(message: string, readonly console: string) {
    super(`${message}\n--- VM console (last 4000 chars) ---\n${console.slice(-4000)}`);
    this.name = 'VmError';
  }
}

const QEMU = 'qemu-system-x86_64';
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPES = /\x1b(?:\[[0-9;?]*[ -\/]*[@-~]|[@-Z\\-_]|c)/g;
// eslint-disable-next-line no-control-regex
const ANSI_COMPLETE_AT_END = /^\x1b(?:\[[0-9;?]*[ -\/]*[@-~]|[@-Z\\-_]|c)/;
/** How far back from new console text a marker can start (marker lines are < 100 chars). */
const MARKER_WINDOW = 256;
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** After the exit marker, qemu must be gone within this (poweroff -f is instant). */
const POWEROFF_GRACE_MS = 10_000;

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function findInPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH || BASE_PATH).split(':')) {
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * True when KVM can run a stock kernel: /dev/kvm opens read-write AND the CPU advertises vmx/svm. The second check
 * matters: this project's machines expose a /dev/kvm backed by kvm-pvm (no vmx), which only boots PVM-enabled guests
 * (a stock kernel hangs right after SeaBIOS). VM_ACCEL=tcg|kvm overrides.
 */
export function kvmUsable(): boolean {
  const forced = process.env.VM_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return forced === 'kvm';
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    return /^flags\s*:.*\b(vmx|svm)\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

export interface VmAssets {
  qemu: string;
  kernel: KernelInfo;
  initramfs: InitramfsInfo;
}

let assets: VmAssets | undefined;

/** Resolves qemu, kernel and initramfs once per process (downloads/builds on first use). Throws clear messages. */
export function prepareVm(log?: (l: string) => void): VmAssets {
  if (assets) return assets;
  const qemu = findInPath(QEMU);
  if (!qemu) throw new Error(`vm: ${QEMU} not found in PATH: apt-get install qemu-system-x86 (scripts/setup.sh does)`);
  const kernel = ensureKernel({ log });
  const initramfs = buildInitramfs(kernel, { log });
  assets = { qemu, kernel, initramfs };
  return assets;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // timeout(1) made its own process group holding qemu
  } catch {
    /* gone */
  }
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone */
  }
}

function buildCmdScript(o: RunInVmOptions, jobDir: string): string {
  const env: Record<string, string> = {
    PATH: process.env.PATH || BASE_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    VM_JOB_DIR: jobDir,
    IN_VIRTGPU_VM: '1',
    ...o.env,
  };
  const lines = ['# generated by tools/vm/vm.ts'];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`vm: bad environment variable name '${k}'`);
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`cd ${shellQuote(o.cwd)} || { echo "vm: cannot cd to ${o.cwd.replace(/["$`\\]/g, '')}" >&2; exit 125; }`);
  if (Array.isArray(o.command)) {
    if (!o.command.length) throw new Error('vm: empty command');
    lines.push(`exec ${o.command.map(shellQuote).join(' ')}`);
  } else {
    lines.push(o.command);
  }
  return lines.join('\n') + '\n';
}

/** Boots a VM, runs the command, powers off. Resolves with the command's status; rejects (VmError) only on VM failure. */
export function runInVm(o: RunInVmOptions): Promise<RunInVmResult> {
  let a: VmAssets;
  try {
    a = prepareVm((l) => o.onOutput?.(l + '\n'));
  } catch (e) {
    return Promise.reject(e);
  }
  if (!path.isAbsolute(o.cwd)) return Promise.reject(new Error(`vm: cwd must be absolute, got '${o.cwd}'`));
  // The job dir lives under /tmp: the guest mounts a tmpfs on /tmp and recreates the same path there.
  const jobDir = fs.mkdtempSync('/tmp/virtgpu-vm-');
  const token = randomBytes(8).toString('hex');
  // The guest mounts tmpfs over /tmp and /run: a cwd below them (a CI clone in /tmp, say) must be shared explicitly.
  const hidden = (d: string) => /^\/(tmp|run)(\/|$)/.test(d);
  const wanted = [...(o.writableDirs ?? []).map((d) => path.resolve(d)), ...(hidden(o.cwd) ? [path.resolve(o.cwd)] : [])];
  const shares = [...new Set(wanted)].map((dir, i) => ({ tag: `rw${i}`, dir }));
  for (const s of shares) if (!fs.statSync(s.dir).isDirectory()) throw new Error(`vm: ${s.dir} is not a directory`);
  fs.writeFileSync(
    path.join(jobDir, 'init.conf'),
    `VM_TOKEN=${token}\nVM_JOB=${shellQuote(jobDir)}\nVM_SHARES=${shellQuote(shares.map((s) => `${s.tag}=${s.dir}`).join(' '))}\n`,
  );
  fs.writeFileSync(path.join(jobDir, 'cmd.sh'), buildCmdScript(o, jobDir));

  const accel = kvmUsable() ? 'kvm' : 'tcg';
  const virtfs = (tag: string, dir: string, ro: boolean) => [
    '-virtfs',
    `local,path=${dir},mount_tag=${tag},security_model=none,multidevs=remap${ro ? ',readonly=on' : ''}`,
  ];
  const args = [
    '-machine', `q35,accel=${accel}`,
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-smp', '2',
    '-m', String(o.memoryMiB ?? 2048),
    '-kernel', a.kernel.vmlinuz,
    '-initrd', a.initramfs.path,
    '-append', 'console=ttyS0 quiet panic=-1',
    '-nographic', '-no-reboot', '-nic', 'none',
    ...virtfs(HOST_TAG, '/', true),
    ...virtfs(JOB_TAG, jobDir, false),
    ...shares.flatMap((s) => virtfs(s.tag, s.dir, false)),
  ];
  // timeout(1) is the outer guard: qemu dies at the deadline even if this Node process is SIGKILLed.
  const hardSecs = Math.ceil(o.timeoutMs / 1000) + 5;
  const start = Date.now();
  const child = spawn('timeout', ['-s', 'KILL', String(hardSecs), a.qemu, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => live.forEach(killGroup));
  }

  return new Promise<RunInVmResult>((resolve, reject) => {
    let consoleText = '';
    let bootMs = -1;
    let startIdx = -1;
    let exit: { code: number; idx: number } | undefined;
    let failure: string | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let emitted = -1; // consoleText index up to which onCommandOutput has been fed
    const feedCommandOutput = () => {
      if (!o.onCommandOutput || startIdx < 0) return;
      if (emitted < 0) emitted = startIdx;
      // Hold back a partial last line: the exit marker may follow unterminated output on the same line.
      const limit = exit ? exit.idx : consoleText.lastIndexOf('\n') + 1;
      if (limit > emitted) {
        o.onCommandOutput(consoleText.slice(emitted, limit));
        emitted = limit;
      }
    };
    const startRe = new RegExp(`@@VM-START-${token}[^\\n]*\\n`);
    const exitRe = new RegExp(`@@VM-EXIT-${token} status=(\\d+) `); // the trailing space: status digits may arrive split
    const fail = (why: string) => {
      if (!failure) failure = why;
      killGroup(child);
    };
    const hard = setTimeout(() => fail(`vm: timed out after ${o.timeoutMs} ms (qemu killed)`), o.timeoutMs);
    /** Console text arrives in tiny chunks (often one byte): keep a partial escape sequence for the next chunk. */
    const makeOnData = () => {
      let carry = '';
      return (chunk: string) => {
        let s = carry + chunk.replace(/\r/g, '');
        carry = '';
        const esc = s.lastIndexOf('\x1b');
        if (esc >= 0 && s.length - esc < 32 && !ANSI_COMPLETE_AT_END.test(s.slice(esc))) {
          carry = s.slice(esc);
          s = s.slice(0, esc);
        }
        // Strip terminal control (SeaBIOS sends ESC c / ESC[2J, which would clear a developer's terminal).
        s = s.replace(ANSI_ESCAPES, '');
        if (s) onText(s);
      };
    };
    const onText = (s: string) => {
      const prevLen = consoleText.length;
      consoleText += s;
      o.onOutput?.(s);
      // Markers are searched only near the new text: output can be large and arrive byte by byte.
      const from = Math.max(startIdx < 0 ? 0 : startIdx, prevLen - MARKER_WINDOW);
      const recent = consoleText.slice(from);
      if (startIdx < 0) {
        const m = startRe.exec(recent);
        if (m) {
          startIdx = from + m.index + m[0].length;
          bootMs = Date.now() - start;
        }
      }
      if (!exit && startIdx >= 0) {
        const from2 = Math.max(startIdx, prevLen - MARKER_WINDOW);
        const m = exitRe.exec(consoleText.slice(from2));
        if (m) {
          exit = { code: Number(m[1]), idx: from2 + m.index };
          graceTimer = setTimeout(() => killGroup(child), POWEROFF_GRACE_MS);
        }
      }
      feedCommandOutput();
      if (!exit && startIdx < 0 && /vm-init: FATAL/.test(recent)) failure ??= 'vm: guest init failed';
    };
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', makeOnData());
    child.stderr!.on('data', makeOnData());
    child.on('error', (e) => fail(`vm: cannot spawn timeout/qemu: ${e.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(hard);
      if (graceTimer) clearTimeout(graceTimer);
      live.delete(child);
      const totalMs = Date.now() - start;
      if (!exit && startIdx >= 0 && o.onCommandOutput && emitted < consoleText.length) o.onCommandOutput(consoleText.slice(Math.max(emitted, startIdx)));
      if (!o.keepJobDir) fs.rmSync(jobDir, { recursive: true, force: true });
      if (exit && !failure) {
        resolve({
          exitCode: exit.code,
          output: consoleText.slice(startIdx, exit.idx),
          console: consoleText,
          bootMs,
          totalMs,
          jobDir,
          accel,
        });
      } else {
        const why =
          failure ??
          (startIdx < 0
            ? `vm: qemu exited (code ${code}, signal ${signal}) before the guest was ready`
            : `vm: qemu exited (code ${code}, signal ${signal}) without the command's exit marker`);
        reject(new VmError(`${why} [accel=${accel}, ${totalMs} ms]`, consoleText));
      }
    });
  });
}

/** Console lines go to stderr as they arrive (prefixed), so a failing or hanging CI run shows what the guest did. */
export function lineLogger(prefix: string): (chunk: string) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) process.stderr.write(`${prefix}${l}\n`);
  };
}
