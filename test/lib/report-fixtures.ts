/**
 * Fixtures of the report tests: a database filled with synthetic replay rows (any size, for the chart aggregation
 * limits), the hostile trace of the XSS test, cut from a real capture, and the headless Chromium that opens reports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';

/** A database whose trace 1 has `n` pins, n/2 holds, n pages, n pgmap_refs, n page_ref events on 6 pfns, CMA rows. */
export async function syntheticDb(n: number, path = ':memory:'): Promise<Db> {
  const db = await Db.open(path);
  await ensureSchema(db);
  const span = 100_000_000_000; // 100 s
  await db.run(
    `INSERT INTO traces (trace_id, source, size_bytes, sha256, format, ingested_at, cpus, lines, events, stacks, unparsed_lines,
                         lost_events, lost_markers, first_ts_ns, last_ts_ns, has_tgid, mt_layout, mapcount_semantics)
     VALUES (1, 'synthetic <b>big</b>.trace', 0, 'x', 'ftrace', now()::TIMESTAMP, 4, $1, $1, 2, 0, 0, 0, 0, $2, true, 'mainline', 'page_mapcount')`,
    [n, span],
  );
  await db.run(`INSERT INTO stacks (trace_id, stack_id, kind, depth, frames, callsite, uses) VALUES
    (1, 1, 'kernel', 5, 'kprobe_trace_func\ntry_grab_folio\ninternal_get_user_pages_fast\n__do_sys_vmsplice\ndo_syscall_64', '__do_sys_vmsplice', 1),
    (1, 2, 'kernel', 2, 'alloc_pages\n<svg onload=alert(9)>', '<svg onload=alert(9)>', 1)`);
  await db.run(
    `INSERT INTO pins BY NAME SELECT 1 AS trace_id, i AS pin_id, 500000 + i % 5000 AS pfn, 500000 + i % 5000 AS folio_pfn, false AS large_folio,
       1 AS refs, i AS start_seq, (i * 49999991) % $2 AS start_ts_ns, CASE WHEN i % 10 = 0 THEN NULL ELSE i END AS end_seq,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 49999991) % $2 + ((i * 7919) % 3000) * 1000000 END AS end_ts_ns,
       1 + ((i * 7919) % 3000) * 1000000 AS duration_ns, i % 50 AS holder_pid, 'task' || (i % 50) AS holder_comm, 1 AS stack_id,
       'refcount' AS source, i % 3 = 0 AS longterm, false AS in_cma, false AS movable_zone, false AS uncertain
     FROM range($1) t(i)`,
    [n, span],
  );
  await db.run(
    `INSERT INTO holds BY NAME SELECT 1 AS trace_id, i AS hold_id, 500000 + i % 3000 AS pfn, 1 AS refs, i AS start_seq,
       (i * 39999983) % $2 AS start_ts_ns, i AS end_seq, (i * 39999983) % $2 + 2000000000 AS end_ts_ns, 2000000000 AS duration_ns,
       7 AS holder_pid, '<img src=x onerror=alert(1)>' AS holder_comm, 1 AS stack_id, 'gup' AS via, false AS in_cma, false AS uncertain
     FROM range($1 // 2) t(i)`,
    [n, span],
  );
  await db.run(
    `INSERT INTO pages BY NAME SELECT 1 AS trace_id, 500000 + i AS pfn, 0 AS "order", i AS alloc_seq, (i * 29999999) % $2 AS alloc_ts_ns,
       CASE WHEN i % 4 = 0 THEN NULL ELSE i + 1 END AS free_seq, CASE WHEN i % 4 = 0 THEN NULL ELSE (i * 29999999) % $2 + 1000000 END AS free_ts_ns,
       i AS first_seq, i + 1 AS last_seq, 'task' || (i % 20) AS alloc_comm, CASE WHEN i % 2 = 0 THEN 2 END AS alloc_stack_id,
       false AS in_cma, false AS zone_device, false AS start_edge, i % 4 = 0 AS end_edge, 0 AS pins_end, 0 AS holds_end,
       1 AS ref_events, false AS uncertain
     FROM range($1) t(i)`,
    [n, span],
  );
  await db.run(
    `INSERT INTO pgmap_refs BY NAME SELECT 1 AS trace_id, (1000 + i % 3)::UBIGINT AS pgmap, i AS seq, i * ($2 // $1) AS ts_ns,
       CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END AS delta, (i % 100) AS balance,
       CASE WHEN i % 1000 = 0 THEN 'remap' WHEN i % 2 = 0 THEN 'get' ELSE 'put' END AS what
     FROM range($1) t(i)`,
    [n, span],
  );
  await db.run(
    `INSERT INTO event_rows BY NAME SELECT 1 AS trace_id, i AS seq, i + 1 AS line_no, i * ($2 // $1) AS ts_ns, 'page_ref_mod' AS event,
       500000 + i % 6 AS pfn, 1 + i % 7 AS count, i % 3 AS mapcount, 1 AS val, 'pfn=...' AS payload_text, 0 AS cpu, 7 AS pid,
       '<img src=x onerror=alert(1)>' AS comm
     FROM range($1) t(i)`,
    [n, span],
  );
  await db.run(
    `INSERT INTO cma_attempts BY NAME SELECT 1 AS trace_id, i AS attempt_id, 'alloc' AS kind, 'reserved' AS cma_name, 9 AS pid, 'cma' AS comm,
       i * 10 AS start_seq, i * ($1 // 300) AS start_ts_ns, i * 10 + 5 AS end_seq, i * ($1 // 300) + 1000000 AS end_ts_ns, 1024 AS request_count,
       i % 5 AS busy_retries, 1 AS ranges_tried, i % 2 AS failed_ranges, i % 2 = 0 AS succeeded, 1 AS blockers
     FROM range(300) t(i)`,
    [span],
  );
  await db.run(
    `INSERT INTO cma_blockers BY NAME SELECT 1 AS trace_id, i % 300 AS attempt_id, i AS range_seq, (i % 300) * ($2 // 300) + 500 AS range_ts_ns,
       500000 AS range_start, 504096 AS range_end, 500000 + i % 5000 AS pfn, i % 7 = 0 AS is_fin_pfn, 'hold' AS holder_kind, i AS holder_id,
       1 AS refs, 7 AS holder_pid, '<img src=x onerror=alert(1)>' AS holder_comm, 1 AS stack_id, 5 AS since_ts_ns, false AS uncertain
     FROM range($1 // 4) t(i)`,
    [n, span],
  );
  return db;
}

export const HOSTILE_COMM = '<img src=x onerror=alert(1)>';
export const HOSTILE_MARKER = '<script>alert(2)</script>';

/**
 * ~95 real lines of qemu-6.1/b-vmsplice.trace.txt: the header, the allocation of pfn 0x794dc, the vmsplice of pid 261 (GUP probes with their
 * stacks, the first FOLL_GET reference on pfn 0x794dc), the munmap lines up to the unmap of 0x794dc (the pipe's
 * reference outlives the mapping), one page_ref event 1 s later and the last marker (so the reference is held > 1 s). The task is renamed
 * HOSTILE_COMM, a marker payload is replaced by HOSTILE_MARKER and a stack frame by markup.
 */
export function hostileTrace(realFile: string): string {
  const lines = readFileSync(realFile, 'utf8').split('\n');
  const header = lines.slice(0, 12);
  const start = lines.findIndex((l) => l.includes('step=pipe rfd='));
  // The allocation and first fault of pfn 0x794dc, so its refcount baseline is known.
  const alloc = lines.slice(0, start).filter((l) => l.includes(' pfn=0x794dc '));
  const grab = [...alloc, ...lines.slice(start, start + 70)];
  const unmap = lines.findIndex((l) => l.includes('step=munmap buffer'));
  const put = lines.findIndex((l, i) => i > unmap && l.includes('page_ref_mod_and_test: pfn=0x794dc '));
  const held = lines.filter((l) => l.includes('step=hold 1000 ms'));
  // One page_ref event of another page 1 s later (the replay's clock reaches the end of the hold window).
  const drain = lines.findIndex((l) => l.includes('step=drain begin'));
  const later = lines.find((l, i) => i > drain && l.includes('page_ref_') && !l.includes(' pfn=0x794dc '));
  if (later) held.push(later);
  const last = lines.filter((l) => l.includes('step=end')).slice(-1);
  // The comm is printed right-aligned in 16 columns before `-PID`; a longer name simply pushes the line right.
  const rename = (l: string) => l.replace(/^ *vmsplice_hold-261/, `${HOSTILE_COMM}-261`);
  const out = [...header, ...[...grab, ...lines.slice(unmap, put + 1), ...held].map(rename), ...last].map((l) =>
    l.includes('tracing_mark_write: scenario=vmsplice pid=261 step=vmsplice begin')
      ? l.replace(/tracing_mark_write: .*$/, `tracing_mark_write: ${HOSTILE_MARKER}`)
      : l,
  );
  const frame = out.findIndex((l) => l === ' => iov_iter_get_pages2');
  if (frame >= 0) out[frame] = ' => <svg/onload=alert(3)>';
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- the browser

const SYSTEM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];
const HOW =
  'the browser tests need a Chromium: run `npm ci` (installs @sparticuz/chromium), install one (apt-get install chromium), or set REFSCOPE_CHROMIUM=/path/to/chrome';

/** A headless Chromium: $REFSCOPE_CHROMIUM, else the system's, else the one shipped in @sparticuz/chromium (npm). */
export async function launch(): Promise<Browser> {
  const tried: string[] = [];
  const env = process.env.REFSCOPE_CHROMIUM;
  const system = SYSTEM.find((p) => existsSync(p));
  const candidates: (() => Promise<Browser>)[] = [];
  if (env) candidates.push(() => chromium.launch({ executablePath: env, args: FLAGS }));
  else if (system) candidates.push(() => chromium.launch({ executablePath: system, args: FLAGS }));
  // An explicit $REFSCOPE_CHROMIUM that does not start is an error, not a reason to pick another browser.
  if (!env) candidates.push(async () => {
    const { default: sparticuz } = await import('@sparticuz/chromium');
    // Its serverless flags include --single-process, where closing the last page ends the browser.
    const args = sparticuz.args.filter((a) => a !== '--single-process');
    return chromium.launch({ executablePath: await sparticuz.executablePath(), args, headless: true });
  });
  for (const start of candidates) {
    try {
      return await start();
    } catch (e) {
      tried.push(String((e as Error).message ?? e).split('\n')[0]);
    }
  }
  throw new Error(`no Chromium could start (${tried.join('; ')}): ${HOW}`);
}

/** What a page did while open: console errors and uncaught exceptions, console warnings, non-file requests, dialogs. */
export interface Watch {
  errors: string[];
  warnings: string[];
  requests: string[];
  dialogs: string[];
}

export async function open(browser: Browser, file: string, width = 1280): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const watch: Watch = { errors: [], warnings: [], requests: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') watch.errors.push(m.text());
    if (m.type() === 'warning') watch.warnings.push(m.text());
  });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file://')) watch.requests.push(r.url());
  });
  page.on('dialog', (d) => {
    watch.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-charts-done]', { timeout: 30_000 });
  return { page, watch };
}
