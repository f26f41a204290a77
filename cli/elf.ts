// What `run` needs to know about its command: whether it is dynamically linked (an ELF with a PT_INTERP program
// header, or a #! script whose interpreter is), so the preload library can serve it the node.
import * as fs from 'fs';
import * as path from 'path';

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little endian
const EI_CLASS = 4, ELFCLASS64 = 2, EI_DATA = 5, ELFDATA2LSB = 1;
const PT_INTERP = 3;

export type Linkage = 'dynamic' | 'static' | 'unknown';

/** The linkage an ELF image's headers state (pure: the first bytes of the file, program headers included). */
export function elfLinkage(b: Buffer): Linkage {
  if (b.length < 52 || b.readUInt32LE(0) !== ELF_MAGIC) return 'unknown';
  const le = b[EI_DATA] === ELFDATA2LSB;
  const u16 = (o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const is64 = b[EI_CLASS] === ELFCLASS64;
  const phoff = is64 ? Number(le ? b.readBigUInt64LE(0x20) : b.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a), phnum = u16(is64 ? 0x38 : 0x2c);
  if (phentsize < 4 || phoff + phnum * phentsize > b.length) return 'unknown';
  for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === PT_INTERP) return 'dynamic';
  return 'static';
}

/** `cmd` as execvp would find it (a name without '/' is looked up in PATH), or null. */
export function resolveCommand(cmd: string, envPath = process.env.PATH ?? '/usr/bin:/bin'): string | null {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const d of envPath.split(':')) {
    const p = path.join(d || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return null;
}

/** The linkage of the program `cmd` runs: its ELF headers, or its #! interpreter's (one level). */
export function commandLinkage(cmd: string, depth = 0): Linkage {
  const file = resolveCommand(cmd);
  if (!file) return 'unknown';
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try { head = Buffer.alloc(4096); head = head.subarray(0, fs.readSync(fd, head, 0, head.length, 0)); } finally { fs.closeSync(fd); }
  } catch { return 'unknown'; }
  if (head[0] === 0x23 && head[1] === 0x21 && depth === 0) { // "#!"
    const interp = head.subarray(2, head.indexOf(0x0a) < 0 ? head.length : head.indexOf(0x0a)).toString('latin1').trim().split(/\s+/)[0];
    return interp ? commandLinkage(interp, 1) : 'unknown';
  }
  return elfLinkage(head);
}
