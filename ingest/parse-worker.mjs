// Worker entry: load tsx so the TypeScript worker module runs without a build step (like bin/refscope.js).
import { register } from 'tsx/esm/api';
register();
await import('./parse-worker.ts');
