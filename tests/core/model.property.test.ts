// Property: core (through the uAPI + snapshot) and the brute-force reference model (tests/helpers/reference-model.ts)
// agree on every ioctl result, out field, live handle, userptr range/op/in_release/registration, host command and
// count, after every step of random sequences of memory operations and ioctls; closing everything returns all
// counts to zero and releases every client. MODEL_SEED / MODEL_RUNS override the seed and the number of runs.
import test from 'ava';
import fc from 'fast-check';
import { Driver, type Cmd, type RunConfig } from '../helpers/model-driver';
import { cmds as cmdsArb, config } from '../helpers/model-commands';

function params(runs: number): fc.Parameters<[RunConfig, Cmd[]]> {
  const seed = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined;
  const numRuns = process.env.MODEL_RUNS ? Number(process.env.MODEL_RUNS) : runs;
  return { numRuns, seed, verbose: 0 };
}

function check(watcher: RunConfig['watcher'], mode: RunConfig['mode'], runs: number, uapi = 'v1'): void {
  try {
    fc.assert(
      fc.property(config(watcher, mode, uapi), cmdsArb, (cfg, cmds) => {
        new Driver(cfg).run(cmds);
      }),
      params(runs),
    );
  } catch (e) {
    // fast-check's report (seed, path, shrunk counterexample) + the mismatch with the concrete steps of the shrunk case
    const cause = (e as { cause?: unknown }).cause;
    throw new Error(`${(e as Error).message}\n\n${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

test('model: uffd watcher, notifier mode — core agrees with the reference model step by step', (t) => {
  check('uffd', 'notifier', 500);
  t.pass();
});

test('model: /proc watcher (approximate mode), notifier mode — core agrees with the reference model', (t) => {
  check('proc', 'notifier', 400);
  t.pass();
});

test('model: pin mode — no dedup, no notifier; handles live until GEM_CLOSE or close', (t) => {
  check('uffd', 'pin', 150);
  t.pass();
});

// Every uAPI revision in its own mode (the model's revision parameters are written by hand in reference-model.ts):
// v2 dedups without a notifier, v3–v6 neither (their pin errno is EFAULT), v6 sends hints in its 64-byte struct,
// mainline has no userptr at all, libhsakmt-72 is v1 in a 72-byte struct.
const REVS: [string, RunConfig['mode']][] = [['v2', 'pin'], ['v3', 'pin'], ['v4', 'pin'], ['v5', 'pin'], ['v6', 'pin'], ['mainline', 'pin'], ['libhsakmt-72', 'notifier']];
for (const [uapi, mode] of REVS) {
  test(`model: uapi ${uapi} (${mode}) — core agrees with the reference model`, (t) => {
    check('uffd', mode, mode === 'notifier' ? 150 : 60, uapi);
    t.pass();
  });
}
