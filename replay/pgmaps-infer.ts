/**
 * pgmaps inferred from ZONE_DEVICE pages when the trace has no pgmap probe naming a dev_pagemap (docs/model.md §7,
 * §13.7). Runs in SQL (queries/replay/pgmaps-infer-*.sql)
 * on the `pages` rows the replay just wrote, inside its transaction.
 *
 * A memory section (2^15 pfns: 128 MiB of 4 KiB pages, the x86-64 granularity memremap_pages works in) is device
 * memory when its lifetimes look like device pages (pgmaps-infer-sections.sql says how). Adjacent device sections
 * form one inferred pgmap (pointer NULL, source 'inferred'); its gets are the device page allocations seen, its puts
 * the frees of those pages. Every lifetime of a device section is marked zone_device. Caveat: hugetlb pool pages also
 * cycle without page-allocator events; a section holding only them would be taken for device memory.
 */
import { listValue } from '../db/duckdb-api.js';
import type { Db } from '../db/duckdb.js';
import { sqlFile } from '../db/sql.js';
import { namesWithCode } from '../ingest/decode/catalogue.js';
import { isRefCode, KM_FREE, KM_FREE_BATCHED } from './event.js';

const SECTION_SHIFT = 15;

const sql = (step: string): string => sqlFile(`replay/pgmaps-infer-${step}.sql`);

/** Infer pgmaps for a trace; returns the number of `pgmaps` rows written. */
export async function inferPgmaps(db: Db, traceId: number): Promise<number> {
  const at = { trace_id: traceId, section_shift: SECTION_SHIFT };
  await db.run(sql('sections'), {
    ...at,
    kmem_frees: listValue(namesWithCode((c) => c === KM_FREE || c === KM_FREE_BATCHED)),
    ref_frees: listValue(namesWithCode(isRefCode)),
  });
  try {
    await db.run(sql('mark'), at);
    await db.run(sql('refs'), at);
    await db.run(sql('refs-insert'), { trace_id: traceId });
    await db.run(sql('pgmaps'), at);
    const n = await db.one<{ n: number }>(sql('count'), { trace_id: traceId });
    return n?.n ?? 0;
  } finally {
    await db.run(sql('drop'));
  }
}
