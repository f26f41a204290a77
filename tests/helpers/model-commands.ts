// fast-check arbitraries for the model property test: the command mix and the run configurations.
import fc from 'fast-check';
import type { Cmd, RunConfig, Sel } from './model-driver';

const sel: fc.Arbitrary<Sel> = fc.record({
  kind: fc.constantFrom<'u' | 'r'>('u', 'u', 'r'),
  idx: fc.nat(7),
  part: fc.constantFrom<Sel['part']>('whole', 'head', 'tail', 'middle', 'sub'),
  a: fc.nat(31),
  b: fc.nat(31),
});
const pIdx = fc.nat(4);
const fIdx = fc.nat(8);

export const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('create' as const), p: pIdx, f: fIdx, sel, lead: fc.oneof(fc.constant(0), fc.nat(4095)), trail: fc.oneof(fc.constant(0), fc.nat(4095)), rdonly: fc.constantFrom(false, false, true), guest: fc.boolean(), mappable: fc.boolean(), bad: fc.constantFrom<'zero' | 'high' | null>(null, null, null, null, null, null, null, null, null, 'zero', 'high') }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('munmap' as const), p: pIdx, sel }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('madvise' as const), p: pIdx, sel, advice: fc.constantFrom<'DONTNEED' | 'FREE' | 'REMOVE'>('DONTNEED', 'DONTNEED', 'FREE', 'REMOVE') }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('mprotect' as const), p: pIdx, sel, prot: fc.constantFrom<'ro' | 'rw' | 'none'>('ro', 'rw', 'rw', 'none') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('mremap' as const), p: pIdx, sel, kind: fc.constantFrom<'move' | 'moveFixed' | 'shrink'>('move', 'moveFixed', 'shrink'), dst: fc.nat(7), k: fc.nat(31) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('remap' as const), p: pIdx, sel, shared: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fork' as const), p: pIdx }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('touch' as const), p: pIdx, sel, write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('migrate' as const), p: pIdx, sel }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('gemclose' as const), p: pIdx, f: fIdx, h: fc.nat(9) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('info' as const), p: pIdx, f: fIdx, h: fc.nat(9) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('probe' as const), p: pIdx, f: fIdx }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('getparam' as const), p: pIdx, f: fIdx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('closefile' as const), f: fIdx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('open' as const), p: pIdx, capset: fc.constantFrom(8, 8, 8, 2) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hold' as const), held: fc.boolean() }) },
);

export function config(watcher: RunConfig['watcher'], mode: RunConfig['mode'], uapi = 'v1'): fc.Arbitrary<RunConfig> {
  return fc.record({ watcher: fc.constant(watcher), mode: fc.constant(mode), uapi: fc.constant(uapi), twoProcs: fc.boolean(), held: fc.boolean(), fileRegion: fc.boolean() });
}

export const cmds = fc.array(cmd, { minLength: 1, maxLength: 60, size: 'max' });
