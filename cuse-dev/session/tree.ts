// The FUSE transport's namespace: a fixed tree of directories and one device file (default dri/renderD128).
// Pure data: the session answers LOOKUP/GETATTR/OPENDIR/READDIR from it.
import { DT_DIR, DT_REG, FUSE_ROOT_ID, S_IFDIR, S_IFREG } from '../abi/fuse';

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

  /** `devicePath` is relative to the mount root, e.g. "dri/renderD128". */
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
