/**
 * vmalloc-uaf: the driver maps its vmalloc() pages with vmf_insert_pfn() (no page reference) and vfree()s them
 * while the process still maps them. Expected: freed_while_mapped on each of the 16 pfns. See vmalloc-remap.ts.
 */
import type { ScenarioDef } from '../types.js';
import { runVmalloc } from './vmalloc-remap.js';

export const vmallocUaf: ScenarioDef = {
  name: 'vmalloc-uaf',
  summary: 'driver vfrees 16 vmalloc pages still mapped by a process through vmf_insert_pfn: freed_while_mapped x16',
  run: (ctx) => runVmalloc(ctx, true),
};
