/**
 * Binary readers run as generators that yield every STEP records: ingest awaits the events feed's room between
 * steps, so DuckDB inserts while the reader goes on and at most a bounded number of batches wait (a synchronous
 * reader would queue the whole capture's batches before DuckDB could take the first: db/feed.ts calls back into JS
 * only between the caller's awaits).
 */
export type Steps<T> = Generator<void, T, void>;

/** Records between two yields. */
export const STEP = 1024;

/** Runs the steps to the end, without pausing (tests, small inputs). */
export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs the steps to the end, awaiting `room()` (the writer's) between them. */
export async function drainAsync<T>(steps: Steps<T>, room: () => Promise<void>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await room();
  }
}
