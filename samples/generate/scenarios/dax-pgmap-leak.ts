/**
 * dax-pgmap-leak: one device-private page keeps an extra reference, so its pgmap reference is still out when
 * memunmap_pages runs, which never returns. Expected: pgmap_refs_at_unmap (outstanding_at_unmap = 1),
 * refcount_not_baseline on the leaked device pfn, and that pfn as a leak. See dax-pgmap.ts.
 */
import type { ScenarioDef } from '../types.js';
import { runDax } from './dax-pgmap.js';

export const daxPgmapLeak: ScenarioDef = {
  name: 'dax-pgmap-leak',
  summary: 'a device-private page is never freed: memunmap_pages hangs with 1 pgmap reference out',
  run: (ctx) => runDax(ctx, true),
};
