// Worker entry when running from source (node --import tsx): registers tsx so the TypeScript worker module
// loads. The built package starts dist/ingest/parse-worker.js directly (see parse.ts).
import { register } from 'tsx/esm/api';
register();
await import('./parse-worker.ts');
