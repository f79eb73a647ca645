import { Db } from '../db/duckdb.js';
import { ingest } from '../ingest/ingest.js';

/**
 * One measured step of the benchmark, in its own process so its peak RSS is its own:
 *   child.ts ingest FILE DB   -> {seconds, lines, events, bytes, maxRssMB}
 *   child.ts replay DB        -> {seconds, events, maxRssMB}
 */
const [step, a, b] = process.argv.slice(2);
const t0 = performance.now();
let out: Record<string, unknown> = {};
if (step === 'ingest') {
  const db = await Db.open(b);
  const s = await ingest(db, a, {});
  db.close();
  out = { lines: s.lines, events: s.events, bytes: s.bytes };
} else if (step === 'replay') {
  const { replay } = await import('../replay/replay.js');
  const db = await Db.open(a);
  const s = await replay(db, 1, {});
  db.close();
  out = { events: s.events };
} else throw new Error(`unknown step ${step}`);
out.seconds = (performance.now() - t0) / 1000;
out.maxRssMB = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify(out));
