// uffd/: real client processes for core — the native addon's typed surface, the memory view of a real pid, and the
// watchers that stand in for MMU notifiers (userfaultfd events + the /proc checker).
export { loadUffd, defaultAddonPaths, type LoadUffdOptions } from './load';
export { SyscallError, isSyscallError } from './errors';
export type { UffdBinding, UffdConstants, ReaderOptions, ReaderStats, Iov, UnixPeer, UnixMessage } from './native-types';
export { uffd_msg, reader_record, decodeReaderRecords, removeVerdict, parseSyscallSnapshot, type UffdRecord, type BlockedMadvise } from './abi';
export { parseMaps, parseMapsLine, backingOf, type ProcMapping } from './proc-maps';
export { PagemapReader, decodeEntry, readEntries, type PagemapEntry } from './pagemap';
export { ProcessMemory, type PopulateMethod, type ProcessMemoryOptions } from './process-memory';
export { UffdWatcher, type UffdWatcherOptions, type RegisterResult } from './uffd-watcher';
export { ProcWatcher, sliceMaps, type ProcSource, type ProcWatcherOptions } from './proc-watcher';
export { UffdHandoff, HandoffMailbox, createOwnUffd, findPreload, preloadPaths, findLauncher, builtPaths, ENV_UFFD_SOCK, PRELOAD_FILE, LAUNCHER_FILE, HANDOFF_MAGIC, HANDOFF_KIND, HANDOFF_PER_UID, HANDOFF_SWEEP_MS, type UffdHandoffOptions, type UffdSource } from './acquire';
export { Channel, CHANNEL_MAGIC, CHANNEL_BASE, DEFAULT_CHANNEL_LIMITS, type ChannelOptions, type ChannelRequest, type ChannelHandler, type ChannelLimits, type ChannelStats } from './channel';
export { adoptUffd, closeIfUffd, fdKind, featureLadder, isUffdRefused, UffdRefused, RefusalLog, type AdoptedUffd, type FdKind } from './verify';
export { Injection, injectUffd, injectUffdAsync, INJECT_STOP_TIMEOUT_MS, type InjectResult, type InjectionOutcome, type InjectionStep } from './inject';
export { InjectPolicy, NO_INJECT_ENV, optedOut, refusalMessage, uidsOf, realProc, type ProcView, type Refusal, type RefusalKind } from './inject-policy';
export { ClientWatch, parseWatchMode, WATCH_MODES, type WatchMode, type ClientWatchOptions } from './watch';
export { createClientProvider, type ClientProviderOptions, type RealClientProvider, type RealClientEnv, type InjectStats } from './provider';
export { EventLatency, eventLatency, type EventLatencyStats } from './event-latency';
export { probeWatchers, type WatcherProbe } from './probe';
export { ProcPidMem, procClientProvider } from './proc-pid-mem';
export { memfdBlobMemory, type MemfdBlobMemoryOptions } from './blob-memfd';
export { FenceFds, FenceFd, FdItems, type FenceFdStats } from './fence-fd';
