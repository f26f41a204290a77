// What `doctor` shows for --watch: which watchers can work in this process.
import { PAGE_SIZE } from '../core/memory/client-memory';
import { createOwnUffd, findLauncher, findPreload } from './acquire';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { ProcessMemory } from './process-memory';

export interface WatcherProbe { name: string; ok: boolean; reason: string }

/**
 * What `doctor` shows for --watch: can this daemon create and initialize a userfaultfd (with FORK events), is the
 * preload library built (how clients hand theirs over), are pagemap frames visible (else /proc frames are
 * per-page identities, pagemap.ts).
 */
export function probeWatchers(binding?: UffdBinding): WatcherProbe[] {
  let u: UffdBinding;
  try { u = binding ?? loadUffd(); } catch (e) {
    const why = `native addon not loadable: ${(e as Error).message.split('\n')[0]}`;
    return [{ name: 'uffd', ok: false, reason: why }, { name: 'proc', ok: false, reason: why }];
  }
  const C = u.constants;
  let uffd: WatcherProbe;
  let fd = -1;
  try {
    fd = createOwnUffd(u);
    const ev = C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP;
    let fork = true;
    try { u.uffdApi(fd, ev | C.UFFD_FEATURE_EVENT_FORK); } catch { fork = false; u.uffdApi(fd, ev); }
    const pre = findPreload();
    const launcher = findLauncher();
    uffd = { name: 'uffd', ok: true, reason: `userfaultfd + UFFDIO_API ok${fork ? '' : ' (no EVENT_FORK: needs CAP_SYS_PTRACE)'}; clients hand theirs over through ${pre ?? 'the preload library (NOT BUILT: npm install)'} under \`virtgpu-emu run\`; others get one by ptrace injection at their first open (statically linked ones under \`run\` too, started through ${launcher ?? 'the launcher (NOT BUILT: npm install)'}), else /proc` };
  } catch (e) {
    uffd = { name: 'uffd', ok: false, reason: `userfaultfd unavailable here: ${(e as { code?: string }).code ?? String(e)}` };
  } finally {
    if (fd >= 0) u.close(fd);
  }
  let proc: WatcherProbe;
  try {
    const mem = new ProcessMemory(process.pid, { binding: u });
    const probe = Buffer.alloc(PAGE_SIZE * 2, 1);
    const at = u.bufferAddress(probe) + PAGE_SIZE - (u.bufferAddress(probe) % PAGE_SIZE);
    mem.frames(at, 1);
    mem.close();
    proc = { name: 'proc', ok: true, reason: mem.framesApproximate ? 'maps + pagemap readable; PFNs hidden (no CAP_SYS_ADMIN): frames are per-page identities (approximate)' : 'maps + pagemap readable with PFNs (approximate: frames compared at each ioctl)' };
  } catch (e) {
    proc = { name: 'proc', ok: false, reason: `/proc/PID/pagemap unreadable: ${(e as { code?: string }).code ?? String(e)}` };
  }
  return [uffd, proc];
}
