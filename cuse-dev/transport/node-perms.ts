// Who may open the node: its owner, group and mode, the same for every transport (FUSE answers them from its
// namespace and the mount's default_permissions makes the kernel enforce them; CUSE chowns/chmods the char device).
// Default like a real render node: root:render 0660 where a `render` group exists, else root:root 0666.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

/** The users and groups database (getent, so NSS sources count); injectable for tests. */
export interface IdDb {
  /** A name or a number → its entry; null when the database has no such entry. */
  lookup(db: 'passwd' | 'group', key: string): { name: string; id: number } | null;
}

export const systemIds: IdDb = {
  lookup(db, key) {
    if (!/^[A-Za-z0-9_.][A-Za-z0-9_.$-]*$/.test(key)) return null; // never an option to getent
    try {
      const f = execFileSync('getent', [db, key], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.split(':');
      return { name: f[0]!, id: Number(f[2]) };
    } catch { return null; }
  },
};

/** The group a real render node belongs to (udev's 50-udev-default.rules). */
export const RENDER_GROUP = 'render';
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown

/**
 * A user or group given by name or number → its id. A number the database does not know is taken as is (as
 * chown(1) does); an unknown name throws.
 */
export function resolveId(db: 'passwd' | 'group', key: string | number, ids: IdDb = systemIds): number {
  const s = String(key);
  const e = ids.lookup(db, s);
  if (e) return e.id;
  if (/^\d+$/.test(s) && Number(s) <= MAX_ID) return Number(s);
  throw new Error(`no such ${db === 'passwd' ? 'user' : 'group'}: "${s}"`);
}

/** A comma-separated list of users (names or numbers) → uids. */
export function resolveUids(list: string, ids: IdDb = systemIds): number[] {
  return list.split(',').map((x) => x.trim()).filter(Boolean).map((x) => resolveId('passwd', x, ids));
}

export interface NodePerms {
  uid: number; gid: number;
  /** Permission bits (07777). */
  mode: number;
  /** Names for messages (the number when the database has none). */
  owner: string; group: string;
  /** Where the defaults came from, for the line `serve` prints. */
  why: string;
}

/**
 * The node's owner/group/mode from the options (numbers, already resolved) and the defaults: owner root; group
 * `render` when the host has one, else root; mode 0660 when the group is not root's (a given or the render group),
 * else 0666.
 */
export function resolveNodePerms(o: { owner?: number; group?: number; modeBits?: number }, ids: IdDb = systemIds): NodePerms {
  const render = o.group === undefined ? ids.lookup('group', RENDER_GROUP) : null;
  const uid = o.owner ?? 0;
  const gid = o.group ?? render?.id ?? 0;
  const mode = (o.modeBits ?? (gid !== 0 ? 0o660 : 0o666)) & 0o7777;
  const given = [o.owner !== undefined && '--owner', o.group !== undefined && '--group', o.modeBits !== undefined && '--mode-bits'].filter(Boolean);
  const why = o.group === undefined
    ? (render ? `a ${RENDER_GROUP} group exists` : `no ${RENDER_GROUP} group here`) + (given.length ? `; ${given.join(', ')} given` : '')
    : `${given.join(', ')} given`;
  return { uid, gid, mode, owner: ids.lookup('passwd', String(uid))?.name ?? String(uid), group: ids.lookup('group', String(gid))?.name ?? String(gid), why };
}

export function formatPerms(p: NodePerms): string {
  return `owner ${p.owner}, group ${p.group}, mode 0${p.mode.toString(8).padStart(3, '0')} (${p.why})`;
}

/**
 * The folders above the node that some user the mode lets in cannot search (no x for others): only root and their
 * owners can reach the node through them. Empty when the mode grants nothing beyond the owner.
 */
export function unreachableFolders(node: string, p: NodePerms, stat: (f: string) => { mode: number; uid: number; gid: number } = fs.statSync): string[] {
  if ((p.mode & 0o077) === 0) return [];
  const out: string[] = [];
  for (let d = path.dirname(path.resolve(node)); ; d = path.dirname(d)) {
    try {
      const st = stat(d);
      const groupOnly = (p.mode & 0o007) === 0;
      const ok = (st.mode & 0o001) !== 0 || (groupOnly && st.gid === p.gid && (st.mode & 0o010) !== 0);
      if (!ok) out.push(`${d} (mode 0${(st.mode & 0o7777).toString(8)})`);
    } catch { /* gone meanwhile */ }
    if (d === path.dirname(d)) break;
  }
  return out;
}
