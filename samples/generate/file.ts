import { createReadStream, createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { generateBody, type GenerateOptions, type Scenario, type Truth } from './index.js';

export { SCENARIOS, type Scenario } from './index.js';

/**
 * Write a scenario trace to `path` and its truth to `path.truth.json`. The scenario runs once: the body goes to a
 * temporary file next to `path`, then `path` gets the header (whose entry count is known only now) and the body.
 * Copying the body costs far less than the counting pass a stream needs (generate()).
 */
export async function generateToFile(scenario: Scenario, path: string, opts: GenerateOptions): Promise<Truth> {
  const body = `${path}.body.tmp`;
  try {
    const out = createWriteStream(body);
    const { truth, header } = await generateBody(scenario, out, opts);
    out.end();
    await once(out, 'finish');
    await writeFile(path, header.map((l) => l + '\n').join(''));
    await pipeline(createReadStream(body, { highWaterMark: 1 << 20 }), createWriteStream(path, { flags: 'a' }));
    await writeFile(path + '.truth.json', JSON.stringify(truth, null, 2) + '\n');
    return truth;
  } finally {
    await rm(body, { force: true });
  }
}
