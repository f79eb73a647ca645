/**
 * Crash injection for test/e2e/crash.test.ts: REFSCOPE_FAILPOINT=<name> makes the process kill itself with SIGKILL
 * (no cleanup, no exit handlers: what `kill -9` or a power cut leaves) when it reaches the named point.
 * Points: ingest-id-committed, ingest-events-written, ingest-before-commit, ingest-after-commit,
 * replay-started, replay-rows-written.
 */
export function failpoint(name: string): void {
  if (process.env.REFSCOPE_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

/**
 * A window for test/e2e/ingest-stop.test.ts to signal into: REFSCOPE_PAUSE=<name>:<ms>[,<name>:<ms>...] waits that
 * long at each named point (ingest-id-committed, ingest-before-commit), after saying so on stderr (with 0 ms: a sign
 * that the point was reached); `cancel` ends the wait early.
 */
export async function pausepoint(name: string, cancel?: AbortSignal): Promise<void> {
  const ms = (process.env.REFSCOPE_PAUSE ?? '').split(',').find((p) => p.startsWith(name + ':'))?.slice(name.length + 1);
  if (ms === undefined || !/^\d+$/.test(ms) || cancel?.aborted) return;
  process.stderr.write(`refscope: pausing ${ms} ms at ${name}\n`);
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      cancel?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Number(ms));
    cancel?.addEventListener('abort', done, { once: true });
  });
}
