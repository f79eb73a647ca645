import type { EventBuilder } from '../builder.js';
import type { Progress } from '../progress.js';
import type { Source } from '../source.js';

export async function readStructured(format: 'csv' | 'arrow', src: Source, _b: EventBuilder, _p: Progress): Promise<number> {
  throw new Error(`${src.name}: ${format} input is not implemented yet`);
}
