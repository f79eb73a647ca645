/**
 * noise: only background traffic (noise.ts): ~50 tasks allocating, mapping, reading files, taking transient
 * references, freeing; page-cache adds/deletes, per-cpu drains and refills, successful cma_alloc/cma_release calls,
 * fork/exec/exit, trace markers; a stack on ~5% of the events. Scale 1 is ~50k lines; scale N is N times
 * longer (the background runs until the trace has 50k x N lines; streamed, memory bounded). Pages still allocated at the end are window edges.
 * Expected: no pin, no anomaly, no leak; the cma calls all succeed.
 */
import { Background } from '../noise.js';
import { forbidAllBut, type ScenarioDef } from '../types.js';
import { begin, mark } from './common.js';

const LINES_PER_SCALE = 50_000;

export const noise: ScenarioDef = {
  name: 'noise',
  summary: 'ordinary background traffic from ~50 tasks (scale 1 = ~50k lines): no finding',
  async run(ctx) {
    const bg = new Background(ctx, { rate: 8.4, fixedRate: true, cma: true, preexisting: 300 });
    begin(ctx);
    const sh = bg.tasks.find((t) => t.comm === 'bash')!;
    mark(ctx, sh, 'noise', 'begin');
    // Run until the target size: the operation mix drifts once the live set reaches its cap, so size by lines.
    const target = Math.round(LINES_PER_SCALE * ctx.scale);
    while (ctx.em.lines < target) await bg.run(20_000);
    mark(ctx, sh, 'noise', 'end');
    return {
      description: `Background traffic only (${bg.tasks.length} tasks, scale ${ctx.scale}): nothing to find.`,
      expect: { pins: [], anomalies: [], leaks: [], cma_attempts: bg.cmaAttempts, cma_blockers: [] },
      forbid: forbidAllBut(),
    };
  },
};
