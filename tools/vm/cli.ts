// node dist/tools/vm/cli.js [--timeout S] [--rw DIR]... [--verbose] -- CMD ARGS...
// Runs CMD inside the CUSE-capable VM with cwd = the repo root; prints its output; exits with its status
// (124 when the VM timed out, 125 when the VM itself failed).
import { prepareVm, repoRoot, runInVm, VmError } from './vm';

const USAGE =
  'usage: node dist/tools/vm/cli.js [--timeout SECONDS] [--rw DIR]... [--cwd DIR] [--verbose] -- CMD [ARGS...]\n' +
  '       node dist/tools/vm/cli.js --prepare   (download the kernel, build the initramfs, print their paths)';

async function main(argv: string[]): Promise<number> {
  let timeoutS = 120;
  let verbose = false;
  let cwd = repoRoot();
  const rw: string[] = [];
  let i = 0;
  for (; i < argv.length && argv[i] !== '--'; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    if (a === '--timeout') timeoutS = Number(val());
    else if (a === '--rw') rw.push(val());
    else if (a === '--cwd') cwd = val();
    else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a === '--prepare') {
      const { qemu, kernel, initramfs } = prepareVm((l) => process.stderr.write(`${l}\n`));
      console.log(JSON.stringify({ qemu, kernel, initramfs }, null, 2));
      return 0;
    }
    else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      return 0;
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  const command = argv.slice(i + 1);
  if (i >= argv.length || !command.length) throw new Error(USAGE);
  if (!(timeoutS > 0)) throw new Error(`--timeout must be a positive number of seconds\n${USAGE}`);
  try {
    const r = await runInVm({
      command,
      cwd,
      timeoutMs: timeoutS * 1000,
      writableDirs: rw,
      onOutput: verbose ? (s) => process.stderr.write(s) : undefined,
      onCommandOutput: verbose ? undefined : (s) => process.stdout.write(s),
    });
    if (verbose) process.stderr.write(`vm: exit ${r.exitCode}, boot ${r.bootMs} ms, total ${r.totalMs} ms, accel ${r.accel}\n`);
    return r.exitCode;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return e instanceof VmError && /timed out/.test(e.message) ? 124 : 125;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  },
);
