import { readFileSync, writeFileSync } from 'node:fs';
import { withSchema } from '../db/schema-doc.js';

// Regenerates the schema section of docs/schema.md from the table definitions.
const path = new URL('../docs/schema.md', import.meta.url);
writeFileSync(path, withSchema(readFileSync(path, 'utf8')));
