import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from '../db/duckdb.js';
import { ingest } from '../ingest/ingest.js';
import { replay } from '../replay/replay.js';
import { writeReport } from '../reports/report.js';
import { generateToFile } from '../samples/generate/file.js';

/**
 * `refscope demo`: the whole pipeline on bundled data. Generates the CMA-blocking scenario (vmsplice
 * references held across a failing cma_alloc), ingests it together with the real c-cma-blocked capture from
 * samples/real, replays both, writes the report of the capture, and prints a short summary.
 */
export async function demo(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const dbPath = join(outDir, 'demo.duckdb');
  rmSync(dbPath, { force: true });
  rmSync(dbPath + '.wal', { force: true });
  const scenario = join(outDir, 'vmsplice-cma.trace');
  await generateToFile('vmsplice-cma', scenario, { seed: 1, scale: 1, format: 'ftrace' });
  const real = new URL('../samples/real/c-cma-blocked.trace.txt.gz', import.meta.url).pathname;
  const db = await Db.open(dbPath);
  const lines: string[] = [];
  let lastId = 0;
  try {
    for (const file of [scenario, real]) {
      const s = await ingest(db, file, {});
      const r = await replay(db, s.trace_id, {});
      lastId = s.trace_id;
      lines.push(`trace ${s.trace_id} ${file.split('/').pop()}: ${s.lines} lines, ${s.events} events in ${s.seconds.toFixed(2)} s`);
      lines.push(`  replay: ${r.pins} pins, ${r.holds} holds, ${r.cma_attempts} CMA attempts, ${r.anomalies} anomalies; count= agreement ${r.agreed}/${r.checked}`);
    }
    const rep = await writeReport(db, { traceId: lastId, outDir: join(outDir, 'report'), formats: ['html', 'md', 'json'] });
    for (const v of rep.verdict) lines.push(`  ${v.query}: ${v.count}${v.level === 'bad' ? '  <-- look here' : ''}`);
  } finally {
    db.close();
  }
  lines.push(`report: ${join(outDir, 'report', 'index.html')} (and report.md, findings.json); database: ${dbPath}`);
  console.log(lines.slice(0, 14).join('\n'));
}
