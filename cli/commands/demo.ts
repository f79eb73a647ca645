import type { Command } from 'commander';
import { mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { packageRoot } from '../package-root.js';

/** `refscope demo`: the whole pipeline on bundled data. */
export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole pipeline on bundled samples: generate, ingest, replay, report')
    .option('--out <dir>', 'where the database and the report go', 'refscope-demo')
    .action(async (o) => {
      await demo(o.out);
    });
}

/**
 * Generates the CMA-blocking scenario (vmsplice references held across a failing cma_alloc), ingests it together
 * with the real c-cma-blocked capture shipped in samples/real, replays both, writes the report of the capture,
 * and prints a short summary.
 */
export async function demo(outDir: string): Promise<void> {
  const [{ Db }, { ingest }, { replay }, { writeReport }, { generateToFile }] = await Promise.all([
    import('../../db/duckdb.js'),
    import('../../ingest/ingest.js'),
    import('../../replay/replay.js'),
    import('../../reports/report.js'),
    import('../../samples/generate/file.js'),
  ]);
  mkdirSync(outDir, { recursive: true });
  const dbPath = join(outDir, 'demo.duckdb');
  rmSync(dbPath, { force: true });
  rmSync(dbPath + '.wal', { force: true });
  const scenario = join(outDir, 'vmsplice-cma.trace');
  await generateToFile('vmsplice-cma', scenario, { seed: 1, scale: 1, format: 'ftrace' });
  const real = join(packageRoot(), 'samples', 'real', 'c-cma-blocked.trace.txt.gz');
  const db = await Db.open(dbPath);
  const lines: string[] = [];
  let lastId = 0;
  try {
    for (const file of [scenario, real]) {
      const s = await ingest(db, file, {});
      const r = await replay(db, s.trace_id, {});
      lastId = s.trace_id;
      lines.push(`trace ${s.trace_id} ${basename(file)}: ${s.lines} lines, ${s.events} events in ${s.seconds.toFixed(2)} s`);
      lines.push(`  replay: ${r.pins} pins, ${r.holds} holds, ${r.cma_allocs} cma_alloc calls, ${r.anomalies} anomalies; count= agreement ${r.agreed}/${r.checked}`);
    }
    const rep = await writeReport(db, { traceId: lastId, outDir: join(outDir, 'report'), formats: ['html', 'md', 'json'] });
    for (const v of rep.verdict) lines.push(`  ${v.query}: ${v.count}${v.level === 'bad' ? '  <-- look here' : ''}`);
  } finally {
    db.close();
  }
  lines.push(`report: ${join(outDir, 'report', 'index.html')} (and report.md, findings.json); database: ${dbPath}`);
  console.log(lines.slice(0, 14).join('\n'));
}
