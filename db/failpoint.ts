/**
 * Crash injection for test/e2e/crash.test.ts: REFSCOPE_FAILPOINT=<name> makes the process kill itself with SIGKILL
 * (no cleanup, no exit handlers: what `kill -9` or a power cut leaves) when it reaches the named point.
 * Points: ingest-id-committed, ingest-events-written, ingest-before-commit, ingest-after-commit,
 * replay-started, replay-rows-written.
 */
export function failpoint(name: string): void {
  if (process.env.REFSCOPE_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
