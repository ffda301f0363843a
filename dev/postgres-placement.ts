/**
 * Where an embedded cluster's files live. Under root the server runs as `postgres`, which must reach
 * its data directory; a data dir asked for inside a private directory (a clone under root's home or
 * a 0700 `mktemp -d`) is therefore placed under /var/lib/ehr-connectors/postgres/<hash of the path
 * asked for>, and the path asked for becomes a symlink to it, so `ls -l .data` shows where the data
 * is and the next start finds it again. The password file stays where it was asked for (beside the
 * path asked for, readable by its owner only).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DevSetupError } from './errors.js';
import { canReachDir, firstClosedAncestor, mkdirTraversable, type ServerUser } from './postgres-binaries.js';

export const RELOCATED_CLUSTERS = '/var/lib/ehr-connectors/postgres';

export interface ClusterPlace {
  /** Where the cluster's files are (the real directory). */
  dataDir: string;
  /** Set when dataDir is not the path asked for: that path is a symlink to dataDir. */
  linkedFrom?: string;
  /** What happened, for the log (a relocation, an orphan removed). */
  notes: string[];
}

export function placeCluster(
  requested: string,
  user: ServerUser | undefined,
  options: { passwordFile: string; relocationRoot?: string },
): ClusterPlace {
  const asked = path.resolve(requested);
  const parent = path.dirname(asked);
  fs.mkdirSync(parent, { recursive: true, mode: 0o755 });

  const link = readLink(asked);
  if (link !== undefined) return { dataDir: link, linkedFrom: asked, notes: [] };
  if (!user || canReachDir(user, parent)) return { dataDir: asked, notes: [] };

  const closed = firstClosedAncestor(parent) ?? parent;
  if (fs.existsSync(path.join(asked, 'PG_VERSION'))) {
    throw new DevSetupError(
      'PostgreSQL',
      `the cluster in ${asked} is out of reach of the \`${user.name}\` user the server runs as (${closed} is private)`,
      `chmod o+x ${closed}, or move the cluster away and let the next start create a new one`,
    );
  }
  const root = options.relocationRoot ?? RELOCATED_CLUSTERS;
  const dataDir = path.join(root, createHash('sha256').update(asked).digest('hex').slice(0, 16));
  const notes = [
    `${asked} is out of reach of the \`${user.name}\` user (${closed} is private): the cluster lives in ${dataDir}`,
  ];
  mkdirTraversable(root);
  if (!canReachDir(user, root)) {
    throw new DevSetupError(
      'PostgreSQL',
      `neither ${parent} nor ${root} can be reached by the \`${user.name}\` user the server runs as`,
      `chmod o+x ${closed}, or run as a non-root user`,
    );
  }
  if (fs.existsSync(dataDir) && !fs.existsSync(options.passwordFile)) {
    // Left by a data dir that was deleted (its password with it): nobody can log in to it any more.
    fs.rmSync(dataDir, { recursive: true, force: true });
    notes.push(`removed ${dataDir}: its data dir and password file were deleted`);
  }
  if (fs.existsSync(asked)) {
    if (fs.readdirSync(asked).length > 0) {
      throw new DevSetupError(
        'PostgreSQL',
        `${asked} is not empty but holds no PostgreSQL cluster (no PG_VERSION)`,
        `move ${asked} away or delete it`,
      );
    }
    fs.rmdirSync(asked);
  }
  fs.symlinkSync(dataDir, asked);
  return { dataDir, linkedFrom: asked, notes };
}

/** Removes a cluster's files, and the symlink that pointed at them. */
export function removeCluster(place: ClusterPlace): void {
  fs.rmSync(place.dataDir, { recursive: true, force: true });
  if (place.linkedFrom) fs.rmSync(place.linkedFrom, { force: true });
}

/** The absolute target when `p` is a symlink (dangling or not), else undefined. */
function readLink(p: string): string | undefined {
  try {
    if (!fs.lstatSync(p).isSymbolicLink()) return undefined;
  } catch {
    return undefined;
  }
  return path.resolve(path.dirname(p), fs.readlinkSync(p));
}
