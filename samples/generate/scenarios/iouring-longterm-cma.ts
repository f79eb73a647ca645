/**
 * iouring-longterm-cma: the io_uring FOLL_LONGTERM pin lands on 4 CMA pages and stays there ~1 s (no longterm_pin
 * migration). Expected: longterm_pin_in_cma on each of the 4 pfns. See iouring-longterm.ts.
 */
import type { ScenarioDef } from '../types.js';
import { runIouring } from './iouring-longterm.js';

export const iouringLongtermCma: ScenarioDef = {
  name: 'iouring-longterm-cma',
  summary: 'io_uring FOLL_LONGTERM pins held ~1 s on 4 CMA pages: longterm_pin_in_cma x4',
  run: (ctx) => runIouring(ctx, true),
};
