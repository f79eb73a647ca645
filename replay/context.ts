/**
 * Read-only facts every tracker may consult: migratetype numbering, the CMA areas (user-given and learned from the
 * trace's cma events before the replay starts), mapcount semantics and the thresholds in force.
 */

export interface Range {
  start: number;
  /** Exclusive. */
  end: number;
}

/** Migratetype numbers of MIGRATE_CMA / MIGRATE_ISOLATE per layout (docs/model.md §9); -1 = none. */
export const MT_CMA_ISOLATE: Record<string, [number, number]> = {
  mainline: [4, 5],
  nocma: [-1, 4],
  'pre4.4': [4, 5],
};

export class ReplayContext {
  readonly mtCma: number;
  readonly mtIsolate: number;

  constructor(
    readonly mtLayout: string,
    /** CMA areas: --cma-range values plus ranges learned from cma_* events. Sorted, merged. */
    readonly cmaRanges: Range[],
    /** ZONE_MOVABLE ranges given by the user. */
    readonly movableRanges: Range[],
    /** 'raw': mapcount= is the raw _mapcount (-1 = unmapped); otherwise page_mapcount (0 = unmapped). */
    readonly mapcountRaw: boolean,
    readonly holdThresholdNs: number,
    readonly longtermThresholdNs: number,
  ) {
    const m = MT_CMA_ISOLATE[mtLayout] ?? MT_CMA_ISOLATE.mainline;
    this.mtCma = m[0];
    this.mtIsolate = m[1];
  }

  inCmaRange(pfn: number): boolean {
    return inRanges(this.cmaRanges, pfn);
  }

  inMovable(pfn: number): boolean {
    return inRanges(this.movableRanges, pfn);
  }

  /** A page with migratetype `mt` at `pfn` is in CMA: mt CMA, or ISOLATE inside a CMA area, or inside an area. */
  isCma(mt: number, pfn: number): boolean {
    if (mt === this.mtCma && mt >= 0) return true;
    return this.cmaRanges.length > 0 && this.inCmaRange(pfn);
  }

  /** Page-table mappings a printed mapcount means (0 when unknown or a page-type sentinel). */
  mappings(mapcount: number): number {
    if (mapcount !== mapcount || mapcount <= -0x20000000) return 0;
    const n = this.mapcountRaw ? mapcount + 1 : mapcount;
    return n > 0 ? n : 0;
  }

  /** mapcount= says the page is mapped (NaN or below -2^29: unknown = not known to be mapped). */
  mapped(mapcount: number): boolean {
    if (mapcount !== mapcount || mapcount <= -0x20000000) return false;
    return this.mapcountRaw ? mapcount >= 0 : mapcount > 0;
  }
}

export function inRanges(ranges: Range[], pfn: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid];
    if (pfn < r.start) hi = mid - 1;
    else if (pfn >= r.end) lo = mid + 1;
    else return true;
  }
  return false;
}

export function mergeRanges(ranges: Range[]): Range[] {
  const s = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out: Range[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}
