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

function check(watcher: RunConfig['watcher'], mode: RunConfig['mode'], runs: number): void {
  try {
    fc.assert(
      fc.property(config(watcher, mode), cmdsArb, (cfg, cmds) => {
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
