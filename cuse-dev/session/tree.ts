// The FUSE transport's namespace: a fixed tree of directories and one device file (default dri/renderD128), and
// the requests answered from it (LOOKUP, GETATTR, OPENDIR, READDIR, ACCESS) for the session.
import * as F from '../abi/fuse';
import { DT_DIR, DT_REG, FUSE_ROOT_ID, S_IFDIR, S_IFREG } from '../abi/fuse';
import { FuseOpcode, opcodeName } from '../abi/opcodes';
import { ENOENT, ENOSYS, ENOTDIR } from '../../core/errno';
import { replyError, replyOk, replyStruct } from './reply';

export interface TreeNode {
  readonly ino: number;
  readonly name: string;
  readonly parent: number;
  readonly dir: boolean;
  /** Permission bits (07777). */
  readonly perm: number;
  readonly children: Map<string, TreeNode>;
}

export class FileTree {
  private readonly nodes = new Map<number, TreeNode>();
  /** Inode of the device file. */
  readonly deviceIno: number;
  readonly created = Math.floor(Date.now() / 1000);

  /**
   * `devicePath` is relative to the mount root, e.g. "dri/renderD128"; the device file is `uid:gid deviceMode`,
   * the directories root's 0755 (with the mount's default_permissions the kernel enforces both).
   */
  constructor(devicePath: string, deviceMode: number, readonly uid = 0, readonly gid = 0) {
    const root: TreeNode = { ino: FUSE_ROOT_ID, name: '', parent: FUSE_ROOT_ID, dir: true, perm: 0o755, children: new Map() };
    this.nodes.set(root.ino, root);
    const parts = devicePath.split('/').filter((p) => p.length > 0);
    if (parts.length === 0) throw new Error(`device path "${devicePath}" is empty`);
    let cur = root;
    let next = FUSE_ROOT_ID + 1;
    parts.forEach((name, i) => {
      const last = i === parts.length - 1;
      const n: TreeNode = { ino: next++, name, parent: cur.ino, dir: !last, perm: last ? deviceMode & 0o7777 : 0o755, children: new Map() };
      cur.children.set(name, n);
      this.nodes.set(n.ino, n);
      cur = n;
    });
    this.deviceIno = cur.ino;
  }

  get(ino: number): TreeNode | undefined { return this.nodes.get(ino); }
  lookup(parent: number, name: string): TreeNode | undefined { return this.nodes.get(parent)?.children.get(name); }
  mode(n: TreeNode): number { return (n.dir ? S_IFDIR : S_IFREG) | n.perm; }
  dtype(n: TreeNode): number { return n.dir ? DT_DIR : DT_REG; }
  /** READDIR listing: ".", "..", then children, in a stable order. */
  entries(dir: TreeNode): { ino: number; name: string; type: number }[] {
    const out = [{ ino: dir.ino, name: '.', type: DT_DIR }, { ino: dir.parent, name: '..', type: DT_DIR }];
    for (const c of dir.children.values()) out.push({ ino: c.ino, name: c.name, type: this.dtype(c) });
    return out;
  }
}

/** What the namespace requests need from the session: its log and its table of open handles. */
export interface TreeCtx {
  readonly tree: FileTree;
  /** Entry/attr cache lifetime, seconds. */
  readonly attrTimeout: number;
  logOnce(key: string, msg: string): void;
  /** A new fh for directory `ino` opened (OPENDIR). */
  openDir(ino: number): number;
  /** The directory an fh stands for, if it is a directory handle. */
  dirOf(fh: number): number | undefined;
}

/** A namespace request (any opcode the session does not answer itself); unknown ones get ENOSYS, logged once. */
export function treeRequest(c: TreeCtx, op: number, unique: bigint, nodeid: bigint, body: Uint8Array): Uint8Array {
  const tree = c.tree;
  const node = tree.get(Number(nodeid));
  switch (op) {
    case FuseOpcode.FUSE_LOOKUP: {
      if (!node) return replyError(unique, ENOENT);
      if (!node.dir) return replyError(unique, ENOTDIR);
      const nul = body.indexOf(0);
      const name = Buffer.from(body.subarray(0, nul < 0 ? body.length : nul)).toString('utf8');
      const child = tree.lookup(node.ino, name);
      if (!child) return replyError(unique, ENOENT);
      const t = BigInt(c.attrTimeout);
      return replyStruct(unique, F.fuse_entry_out, {
        nodeid: BigInt(child.ino), generation: 1n, entry_valid: t, attr_valid: t, entry_valid_nsec: 0, attr_valid_nsec: 0, attr: attrOf(tree, child),
      });
    }
    case FuseOpcode.FUSE_GETATTR: {
      if (!node) return replyError(unique, ENOENT);
      return replyStruct(unique, F.fuse_attr_out, { attr_valid: BigInt(c.attrTimeout), attr_valid_nsec: 0, dummy: 0, attr: attrOf(tree, node) });
    }
    case FuseOpcode.FUSE_OPENDIR: {
      if (!node) return replyError(unique, ENOENT);
      if (!node.dir) return replyError(unique, ENOTDIR);
      return replyStruct(unique, F.fuse_open_out, { fh: BigInt(c.openDir(node.ino)), open_flags: 0, backing_id: 0 });
    }
    case FuseOpcode.FUSE_READDIR: {
      const r = F.fuse_read_in.decode(body);
      return readdir(tree, unique, c.dirOf(Number(r.fh)) ?? Number(nodeid), r.offset, r.size);
    }
    case FuseOpcode.FUSE_ACCESS:
      return node ? replyOk(unique) : replyError(unique, ENOENT);
    default:
      c.logOnce(`enosys:${op}`, `${opcodeName(op)} not implemented: ENOSYS`);
      return replyError(unique, ENOSYS);
  }
}

/** struct fuse_attr of a node: no size, times of the tree's creation. */
export function attrOf(tree: FileTree, n: TreeNode): ReturnType<typeof F.fuse_attr.zero> {
  const t = BigInt(tree.created);
  return {
    ino: BigInt(n.ino), size: 0n, blocks: 0n, atime: t, mtime: t, ctime: t, atimensec: 0, mtimensec: 0, ctimensec: 0,
    mode: tree.mode(n), nlink: n.dir ? 2 : 1, uid: n.dir ? 0 : tree.uid, gid: n.dir ? 0 : tree.gid, rdev: 0, blksize: 4096, flags: 0,
  };
}

/** READDIR (or READ on a directory handle): the entries from `offset` that fit in `size` bytes of fuse_dirents. */
export function readdir(tree: FileTree, unique: bigint, ino: number, offset: bigint, size: number): Uint8Array {
  const dir = tree.get(ino);
  if (!dir || !dir.dir) return replyError(unique, ENOTDIR);
  const all = tree.entries(dir);
  const parts: Uint8Array[] = [];
  let used = 0;
  for (let i = Number(offset); i < all.length; i++) {
    const e = all[i]!;
    const name = Buffer.from(e.name, 'utf8');
    const len = Math.ceil((F.fuse_dirent.size + name.length) / F.FUSE_DIRENT_ALIGN) * F.FUSE_DIRENT_ALIGN;
    if (used + len > size) break;
    const b = new Uint8Array(len);
    F.fuse_dirent.encode({ ino: BigInt(e.ino), off: BigInt(i + 1), namelen: name.length, type: e.type }, b);
    b.set(name, F.fuse_dirent.size);
    parts.push(b);
    used += len;
  }
  return replyOk(unique, ...parts);
}
