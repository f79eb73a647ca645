/**
 * One cache of replayed databases for the whole suite: several test files read the same real captures and scenario
 * traces, and each used to ingest and replay them again. A database here is the given inputs ingested (and replayed)
 * in order, stored under os.tmpdir()/refscope-test-cache/ by a key that hashes
 *  - the product that makes it: every file of db/, ingest/, replay/, queries/ (replay runs queries/replay/*.sql),
 *    samples/generate/, package-lock.json and this file (a change to any of them is another key, so a cached
 *    fixture never hides a regression);
 *  - each input: a file's path (traces.source holds it) and bytes, a scenario's name and generator options.
 * Safe under concurrent test processes: one builds under a lock file, into a temporary name renamed into place when
 * closed; the others wait for it. Readers open the database read-only (several processes may), or privateCopy()
 * it when they write.
 * A test whose subject is the ingest or replay of an input calls replayedDb(..., { fresh: true }): it always runs
 * them itself (and leaves the result for the others).
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Db } from '../../db/duckdb.js';
import { ingest, type IngestSummary } from '../../ingest/ingest.js';
import { replay, type ReplaySummary } from '../../replay/replay.js';
import type { GenerateOptions, Scenario, Truth } from '../../samples/generate/index.js';
import { CAPTURES, REAL, type Cap } from './captures.js';
import { ROOT } from './cli.js';

/** A trace file, or a scenario the generator writes (its truth comes back with the database). */
export type Input = { file: string } | { scenario: Scenario; opts: GenerateOptions };

export interface Fixture {
  /** The database file: open it read-only, or privateCopy() it to write. */
  path: string;
  /** Trace id of each input, in order. */
  ids: number[];
  /** Each scenario input's truth (undefined for a file). */
  truths: (Truth | undefined)[];
  /** What ingest() and replay() returned for each input, when the database was built (replay: undefined without). */
  ingested: IngestSummary[];
  replayed: (ReplaySummary | undefined)[];
}

export const CACHE = join(tmpdir(), 'refscope-test-cache');
const PRODUCT = ['db', 'ingest', 'replay', 'queries', join('samples', 'generate')];
/** A lock older than this was left by a killed process (whatever process has its pid now). */
const STALE_LOCK_MS = 10 * 60_000;
/**
 * Entries of other products (~250 MB per product after a whole run) are removed once unused this long: a run that
 * began before the sources changed, or another checkout's run, may still be reading them (cached() marks each use).
 */
const OLD_ENTRY_MS = 15 * 60_000;

let product: string | undefined;
/** Hash of the sources that make a replayed database (computed once per process: ~100 small files). */
export function productHash(): string {
  if (product) return product;
  const h = createHash('sha256');
  const files = PRODUCT.flatMap((d) => readdirSync(join(ROOT, d), { recursive: true, encoding: 'utf8' }).map((f) => join(d, f)));
  files.push('package-lock.json', join('test', 'lib', 'fixtures.ts'));
  for (const f of files.sort()) {
    const p = join(ROOT, f);
    if (!statSync(p).isFile()) continue;
    h.update(f).update('\0').update(readFileSync(p)).update('\0');
  }
  return (product = h.digest('hex').slice(0, 16));
}

function inputsHash(inputs: Input[], doReplay: boolean): string {
  const h = createHash('sha256').update(doReplay ? 'replayed' : 'ingested');
  for (const i of inputs) {
    if ('file' in i) h.update(`\0file\0${resolve(i.file)}\0`).update(readFileSync(i.file));
    else h.update(`\0scenario\0${i.scenario}\0${JSON.stringify(i.opts, Object.keys(i.opts).sort())}`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The database of `inputs` ingested (and replayed, unless `replay: false`) in order: cached, built if absent. With
 * `fresh`, built in any case by this call (the test's subject is that ingest or replay), then left in the cache.
 */
export async function replayedDb(inputs: Input[], opts: { replay?: boolean; fresh?: boolean } = {}): Promise<Fixture> {
  const doReplay = opts.replay ?? true;
  mkdirSync(CACHE, { recursive: true });
  const key = `${productHash()}-${inputsHash(inputs, doReplay)}`;
  const path = join(CACHE, `${key}.duckdb`);
  const meta = join(CACHE, `${key}.json`);
  const lock = join(CACHE, `${key}.lock`);
  const cached = (): Fixture => {
    // Used now: another checkout's prune (a different product, same cache) must not take it as an old entry.
    const now = new Date();
    for (const f of [path, meta]) utimesSync(f, now, now);
    return { path, ...(JSON.parse(readFileSync(meta, 'utf8')) as Omit<Fixture, 'path'>) };
  };
  for (;;) {
    if (!opts.fresh && existsSync(path)) return cached();
    let locked = false;
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      locked = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (abandoned(lock)) rmSync(lock, { force: true });
    }
    // Without the lock a reader waits for whoever holds it; a fresh build goes on (in a directory of its own).
    if (!locked && !opts.fresh) {
      await sleep(100);
      continue;
    }
    try {
      if (!opts.fresh && existsSync(path)) return cached(); // built by another process before the lock was taken
      const tmp = join(CACHE, `${key}.${process.pid}.tmp`);
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp);
      try {
        const made = await build(inputs, doReplay, tmp);
        // The metadata first: the database appearing is what says the entry is complete.
        writeFileSync(`${meta}.${process.pid}`, JSON.stringify(made));
        renameSync(`${meta}.${process.pid}`, meta);
        renameSync(join(tmp, 'db.duckdb'), path);
        prune();
        return { path, ...made };
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    } finally {
      if (locked) rmSync(lock, { force: true });
    }
  }
}

/** A lock whose process is gone (a test run interrupted while building), or too old to be a build. */
function abandoned(lock: string): boolean {
  try {
    if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) return true;
    const pid = Number(readFileSync(lock, 'utf8'));
    if (!pid) return false; // just created, the pid not written yet
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function build(inputs: Input[], doReplay: boolean, tmp: string): Promise<Omit<Fixture, 'path'>> {
  const db = await Db.open(join(tmp, 'db.duckdb'));
  const ids: number[] = [];
  const truths: (Truth | undefined)[] = [];
  const ingested: IngestSummary[] = [];
  const replayed: (ReplaySummary | undefined)[] = [];
  try {
    for (const [n, i] of inputs.entries()) {
      let file: string;
      if ('file' in i) {
        file = i.file;
        truths.push(undefined);
      } else {
        const { generateToFile } = await import('../../samples/generate/file.js');
        // Named as docs/queries.md's examples name them (`refscope generate NAME -o NAME.trace`).
        mkdirSync(join(tmp, String(n)));
        file = join(tmp, String(n), `${i.scenario}.trace`);
        truths.push(await generateToFile(i.scenario, file, i.opts));
      }
      const s = await ingest(db, file);
      ingested.push(s);
      replayed.push(doReplay ? await replay(db, s.trace_id, {}) : undefined);
      ids.push(s.trace_id);
    }
  } finally {
    db.close();
  }
  return { ids, truths, ingested, replayed };
}

/** Remove entries made by other products OLD_ENTRY_MS ago or more (and their leftovers). */
function prune(): void {
  const now = Date.now();
  for (const f of readdirSync(CACHE)) {
    if (f.startsWith(productHash())) continue;
    const p = join(CACHE, f);
    try {
      if (now - statSync(p).mtimeMs > OLD_ENTRY_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // removed by another process
    }
  }
}

/** A copy of a fixture's database at `path`, for a test that writes (the cached file stays as built). */
export function privateCopy(f: Fixture, path: string): string {
  copyFileSync(f.path, path);
  return path;
}

/** Open a fixture read-only. */
export const openFixture = (f: Fixture): Promise<Db> => Db.open(f.path, { readOnly: true });

/** Every real capture of CAPTURES in its order, in one database (built by replay.test, read by queries, story, charts). */
export const ALL_REAL: Input[] = Object.values(CAPTURES).map((f) => ({ file: join(REAL, f) }));

/** The trace id of each capture in an ALL_REAL fixture. */
export const realIds = (f: Fixture): Record<Cap, number> =>
  Object.fromEntries((Object.keys(CAPTURES) as Cap[]).map((k, i) => [k, f.ids[i]!])) as Record<Cap, number>;
