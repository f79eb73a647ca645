import { statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Free space left on a database's filesystem after a write, so that a full disk never leaves the file unable to
 * open: DuckDB replays the WAL at the next open and checkpoints it into the file, which needs room of its own.
 * Override with REFSCOPE_MIN_FREE_BYTES (bytes).
 */
export const HEADROOM_BYTES = 128 * 1024 * 1024;

/** Bytes an ingest may write for an input of `size` bytes on disk: its text (x10 when compressed); stdin: unknown, 0. */
export function ingestEstimate(name: string, size: number | null): number {
  if (size === null) return 0;
  return /\.(gz|xz|zst)$/i.test(name) ? size * 10 : size;
}

/**
 * Throws one clear line when the filesystem of `dbPath` has less than `need` bytes plus the headroom available.
 * In-memory databases and filesystems statfs cannot read are not checked.
 */
export function checkFreeSpace(dbPath: string, need: number, what: string): void {
  if (dbPath === '' || dbPath === ':memory:') return;
  const env = process.env.REFSCOPE_MIN_FREE_BYTES;
  const headroom = env !== undefined && /^\d+$/.test(env.trim()) ? Number(env) : HEADROOM_BYTES;
  let free: number;
  try {
    const s = statfsSync(dirname(resolve(dbPath)));
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return;
  }
  if (free < need + headroom)
    throw new Error(
      `${dbPath}: only ${mb(free)} free on its filesystem; ${what} needs about ${mb(need)} plus ${mb(headroom)} headroom ` +
        '(so the database can still open after a full disk); free some space first',
    );
}

const mb = (n: number): string => `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MB`;
