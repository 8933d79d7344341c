/**
 * PGlite's NodeFS with owner-only file modes.
 *
 * Written against @electric-sql/pglite 0.5.16 (Emscripten's NODEFS inside it).
 *
 * Why a shim: PGlite's NodeFS leaves the data directory readable and writable by everyone. Its
 * initdb copies each file into the data directory through Emscripten's FS, which creates the file
 * and then chmods it to the recorded mode with `fs.chmodSync`, so the process umask never
 * applies: 968 of the 971 files of a new `pgdata` are 0666 and its directories 0755 under umask
 * 0022 (0777 under umask 0). Files PostgreSQL creates later go through the same calls. There is
 * no option for it, and `process.umask()` cannot help (chmod ignores it; it is also process-wide
 * and refused in worker threads). Reproduction, outside aiecs:
 *
 *     node -e "const {PGlite}=require('@electric-sql/pglite');PGlite.create('/tmp/d').then(d=>d.close())"
 *     find /tmp/d -type f -perm -o+w | wc -l     # 968
 *
 * What it does: every mode this PGlite instance's NODEFS passes to node:fs (create, mkdir,
 * chmod, fchmod) loses its group and other bits. The patch is applied to this instance's own
 * Emscripten module in a preRun hook, so other PGlite instances and the rest of the process are
 * untouched. If PGlite's internals move, opening fails with a clear error instead of writing
 * world-readable files; test/embedded-store.test.ts fails too.
 */
import { NodeFS } from '@electric-sql/pglite/nodefs';

type PostgresModLike = { NODEFS?: unknown };
type Attr = { mode?: number };
type Ops = Record<string, unknown>;

const OWNER_ONLY = ~0o077;

const masked = (attr: Attr): Attr =>
  attr.mode === undefined ? attr : { ...attr, mode: attr.mode & OWNER_ONLY };

function restrictModes(mod: PostgresModLike): void {
  const nodefs = mod.NODEFS as { node_ops?: Ops; stream_ops?: Ops } | undefined;
  const nodeOps = nodefs?.node_ops;
  const streamOps = nodefs?.stream_ops;
  const mknod = nodeOps?.mknod;
  const setattr = nodeOps?.setattr;
  const streamSetattr = streamOps?.setattr;
  if (
    !nodeOps ||
    !streamOps ||
    typeof mknod !== 'function' ||
    typeof setattr !== 'function' ||
    typeof streamSetattr !== 'function'
  ) {
    throw new Error(
      'the embedded store cannot keep its files private: this @electric-sql/pglite has no NODEFS ' +
        'mknod/setattr (written against 0.5.16); install the version aiecs pins',
    );
  }
  nodeOps.mknod = (parent: unknown, name: string, mode: number, dev: unknown): unknown =>
    mknod.call(nodeOps, parent, name, mode & OWNER_ONLY, dev);
  nodeOps.setattr = (node: unknown, attr: Attr): unknown => setattr.call(nodeOps, node, masked(attr));
  streamOps.setattr = (stream: unknown, attr: Attr): unknown =>
    streamSetattr.call(streamOps, stream, masked(attr));
}

/** NodeFS over `dataDir` whose files are 0600 and directories 0700, whatever the umask. */
export class OwnerOnlyNodeFS extends NodeFS {
  override async init(...[pg, options]: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    // Ours runs before NodeFS's own preRun, which mounts NODEFS: the ops are patched before any use.
    return super.init(pg, {
      ...options,
      preRun: [...(options.preRun ?? []), (mod) => restrictModes(mod as unknown as PostgresModLike)],
    });
  }
}
