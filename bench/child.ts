import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Db } from '../db/duckdb.js';
import { runBaseline } from './compare.js';

/**
 * One measured step of the benchmark, in its own process so that its peak RSS is its own. Modules are loaded
 * before the clock starts. Prints one JSON line: {seconds, maxRssMB, ...}.
 *   child.ts ingest FILE DB [RUNS [ROOT]]   refscope's ingest (no replay)       + {lines, events, bytes, cpuSeconds}
 *                                           RUNS times into a new DB each (seconds: the median, cpuSeconds: the
 *                                           mean), with the modules of the tree at ROOT (default: this one)
 *   child.ts cli-ingest ROOT FILE DB RUNS [--no-replay]
 *                                           ROOT's `refscope ingest FILE --db DB --json`, in process: the
 *                                           CLI's default (replay included); RUNS as above
 *                                                                               + {lines, events, replayed, cpuSeconds}
 *   child.ts duckdb-read-csv FILE           DuckDB reading FILE as one VARCHAR column + {rows}
 *   child.ts replay DB                      replay of trace 1                   + {events}
 *   child.ts duckdb-stream DB               DuckDB handing trace 1 to replay    + {events}
 *   child.ts queries DB                     every queries/*.sql, default params + {queries: {name: {seconds, rows}}}
 *   child.ts report DB DIR                  `refscope report --format html,md,json --out DIR`
 *   child.ts duckdb-regex FILE DB           duckdb-regex.sql into an on-disk database + {rows}
 *   child.ts duckdb-regex-8cols FILE        duckdb-regex-8cols.sql, in memory + {rows}
 *   child.ts duckdb-copy SRC_DB DB          SRC_DB's events copied into a new database's events + {rows}
 *   child.ts duckdb-store SRC_DB DB         SRC_DB's replay rows stored into a new database     + {rows}
 */

/** CPU time of the JS thread alone (Linux: /proc, in clock ticks of 10 ms); null elsewhere. */
function mainThreadCpuSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

const [step, a, b] = process.argv.slice(2) as [string, string, string];
let t0 = 0;
const start = (): void => void (t0 = performance.now());
let out: Record<string, unknown>;

/** A module of the tree at `root` (its .ts source, loaded through tsx). */
const fromTree = (root: string, path: string): Promise<Record<string, any>> => import(pathToFileURL(join(root, path)).href);
const here = new URL('..', import.meta.url).pathname;
const freshDb = (path: string): void => {
  for (const p of [path, path + '.wal']) rmSync(p, { force: true });
  rmSync(path + '.tmp', { recursive: true, force: true });
};
/** The median of several runs, when a step measures it. */
let seconds: number | null = null;

/** `once` `runs` times, DB new each time: the median wall time goes in `seconds`; the mean CPU time is returned. */
async function repeated<T>(runs: number, db: string, once: () => Promise<T>): Promise<{ last: T; cpuSeconds: number }> {
  const times: number[] = [];
  let cpu = 0;
  let last: T | undefined;
  for (let i = 0; i < runs; i++) {
    freshDb(db);
    start();
    const c0 = process.cpuUsage();
    last = await once();
    const c = process.cpuUsage(c0);
    times.push((performance.now() - t0) / 1000);
    cpu += (c.user + c.system) / 1e6;
  }
  seconds = times.sort((x, y) => x - y)[times.length >> 1]!;
  return { last: last!, cpuSeconds: cpu / runs };
}

if (step === 'ingest') {
  const root = process.argv[6] ?? here;
  const { ingest } = await fromTree(root, 'ingest/ingest.ts');
  const { Db: TreeDb } = await fromTree(root, 'db/duckdb.ts');
  const { last: s, cpuSeconds } = await repeated(Number(process.argv[5] ?? 1), b, async () => {
    const db = await TreeDb.open(b);
    const s = await ingest(db, a, {});
    db.close();
    return s;
  });
  out = { lines: s.lines, events: s.events, bytes: s.bytes, cpuSeconds };
} else if (step === 'cli-ingest') {
  // The CLI's own action on a commander program of its own, every module it loads when it runs loaded first.
  const [root, file, dbPath, runs, noReplay] = [a, b, process.argv[5]!, Number(process.argv[6]), process.argv[7] === '--no-replay'];
  const { Command } = await import('commander');
  const { ingestCommand } = await fromTree(root, 'cli/commands/ingest.ts');
  await fromTree(root, 'ingest/ingest.ts');
  await fromTree(root, 'replay/replay.ts');
  await fromTree(root, 'db/duckdb.ts');
  const { last: s, cpuSeconds } = await repeated(runs, dbPath, async () => {
    const program = new Command('refscope').exitOverride();
    ingestCommand(program);
    const printed: string[] = [];
    const log = console.log;
    console.log = (...x: unknown[]) => void printed.push(x.join(' '));
    try {
      await program.parseAsync(['ingest', file, '--db', dbPath, '--json', ...(noReplay ? ['--no-replay'] : [])], { from: 'user' });
    } finally {
      console.log = log;
    }
    if (process.exitCode) throw new Error(`cli-ingest: exit code ${process.exitCode}`);
    return JSON.parse(printed.join('\n'));
  });
  out = { lines: s.lines, events: s.events, replayed: s.replay !== undefined || s.replayed === true, cpuSeconds };
} else if (step === 'duckdb-read-csv') {
  start();
  const db = await Db.open(':memory:');
  // Every line's text read and measured, so DuckDB cannot skip materialising the column.
  const r = await db.one<{ n: bigint }>(
    `SELECT count(*) AS n, sum(length(line)) AS chars FROM read_csv($file, columns = {'line': 'VARCHAR'}, delim = '\\x01',
       quote = '', escape = '', header = false, auto_detect = false, strict_mode = false)`,
    { file: a },
  );
  db.close();
  out = { rows: Number(r!.n) };
} else if (step === 'replay') {
  const { replay } = await import('../replay/replay.js');
  start();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuSeconds();
  const db = await Db.open(a);
  const s = await replay(db, 1, {});
  db.close();
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpuSeconds();
  out = { events: s.events, cpuSeconds: (cpu.user + cpu.system) / 1e6, mainCpuSeconds: main0 === null || main1 === null ? null : main1 - main0 };
} else if (step === 'duckdb-stream') {
  // DuckDB's own cost of handing replay its input, with replay's settings: the string lists, the side rows and the
  // event stream, each chunk's columns viewed as replay views them. No model, nothing written: replay's floor.
  const { chunkColumns, enumWidths, loadSide, loadStrings, streamSql } = await import('../replay/source.js');
  start();
  const db = await Db.open(a);
  let events = 0;
  await db.withMemoryLimit('128MB', async () => {
    const conn = await db.instance.connect();
    const strings = await loadStrings(conn, 1);
    await loadSide(conn, 1);
    await db.withOneThread(async () => {
      const res = await conn.stream(streamSql(strings, 0n, false), { trace: 1 });
      const w = enumWidths(res);
      let next = res.fetchChunk(); // fetched while the previous chunk is read, as replay does
      for (;;) {
        const c = await next;
        if (!c || c.rowCount === 0) break;
        next = res.fetchChunk();
        chunkColumns(c, w);
        events += c.rowCount;
      }
    });
    conn.closeSync();
  });
  db.close();
  out = { events };
} else if (step === 'queries') {
  const { ensureHelpers, listQueries, runQuery } = await import('../queries/runner.js');
  const db = await Db.open(a, { readOnly: true });
  await ensureHelpers(db); // once per connection, as the CLI does before its query: not counted in any query
  const queries: Record<string, { seconds: number; rows: number }> = {};
  start();
  for (const q of listQueries()) {
    const t = performance.now();
    const r = await runQuery(db, q);
    queries[q.name] = { seconds: (performance.now() - t) / 1000, rows: r.rows.length };
  }
  db.close();
  out = { queries };
} else if (step === 'report') {
  const { report } = await import('../cli/commands/report.js');
  start();
  await report({ db: a, out: b, format: 'html,md,json' });
  out = {};
} else if (step === 'duckdb-regex' || step === 'duckdb-regex-8cols') {
  const full = step === 'duckdb-regex';
  start();
  // DuckDB's default storage format, as a power user's database has (refscope's own is newer: db/duckdb.ts).
  const db = await Db.open(full ? b : ':memory:', { storageVersion: null });
  await runBaseline(db, full ? 'full' : '8cols', a);
  const n = await db.one<{ n: bigint }>(`SELECT count(*) AS n FROM ${full ? 'events' : 'ev'}`);
  db.close();
  out = { rows: Number(n!.n) };
} else if (step === 'duckdb-copy') {
  // DuckDB's own cost of storing the events rows: the same rows, already typed, copied from the ingested database
  // into a new one's `event_rows` (what `events` reads), with ingest's settings (one thread, 128MB, one transaction).
  const { ensureSchema } = await import('../db/setup.js');
  start();
  const db = await Db.open(b);
  await ensureSchema(db);
  await db.run(`ATTACH '${a.replaceAll("'", "''")}' AS src (READ_ONLY)`);
  await db.withMemoryLimit('128MB', () => db.withOneThread(() => db.transaction(() => db.run('INSERT INTO event_rows SELECT * FROM src.event_rows'))));
  const n = await db.one<{ n: bigint }>('SELECT count(*) AS n FROM events');
  db.close();
  out = { rows: Number(n!.n) };
} else if (step === 'duckdb-store') {
  // DuckDB's own cost of storing replay's results: the rows of every replay table of SRC_DB, first held in temporary
  // tables (not timed), inserted into a new database's tables on one thread in one transaction, then the database
  // closed, as replay's are. Not under replay's 128MB cap: the held rows would count against it and slow it down,
  // which replay's rows, arriving from JS, do not. Reading the held rows back is timed too (a
  // small excess over replay's own write). With duckdb-stream: the floor replay's model adds to.
  const { ensureSchema } = await import('../db/setup.js');
  const { REPLAY_TABLES } = await import('../db/tables/replay.js');
  const db = await Db.open(b);
  await ensureSchema(db);
  await db.run(`ATTACH '${a.replaceAll("'", "''")}' AS src (READ_ONLY)`);
  for (const t of REPLAY_TABLES) await db.run(`CREATE TEMP TABLE held_${t.name} AS SELECT * FROM src.${t.name}`);
  const count = (schema: string): string => REPLAY_TABLES.map((t) => `(SELECT count(*) FROM ${schema}.${t.name})`).join(' + ');
  const held = await db.one<{ n: bigint }>(`SELECT ${count('src')} AS n`);
  await db.run('DETACH src');
  start();
  await db.withOneThread(() =>
    db.transaction(async () => {
      for (const t of REPLAY_TABLES) await db.run(`INSERT INTO ${t.name} SELECT * FROM held_${t.name}`);
    }),
  );
  const n = await db.one<{ n: bigint }>(`SELECT ${count('main')} AS n`);
  db.close();
  if (n!.n !== held!.n || n!.n === 0n) throw new Error(`duckdb-store: stored ${n!.n} rows of ${held!.n}`);
  out = { rows: Number(n!.n) };
} else throw new Error(`unknown step ${step}`);
out.seconds = seconds ?? (performance.now() - t0) / 1000;
out.maxRssMB = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify(out));
