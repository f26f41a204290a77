// What tests and benchmarks drive core with besides the product surface (core/index.ts): the simulated machine
// (processes, mappings, frames, a userfaultfd-like watcher) and a scheduler that holds the worker.
export { SimMachine, SimProcess, SimObject, SimEvents, simProvider, PROT_R, PROT_RW, PROT_NONE, type Prot } from './memory/sim-memory';
export { DeferredScheduler } from './userptr/worklist';
