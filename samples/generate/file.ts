import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { generate, type GenerateOptions, type Scenario, type Truth } from './index.js';

export { SCENARIOS, type Scenario } from './index.js';

/** Write a scenario trace to `path` and its truth to `path.truth.json`. */
export async function generateToFile(scenario: Scenario, path: string, opts: GenerateOptions): Promise<Truth> {
  const out = createWriteStream(path);
  const truth = await generate(scenario, out, opts);
  out.end();
  await once(out, 'finish');
  await writeFile(path + '.truth.json', JSON.stringify(truth, null, 2) + '\n');
  return truth;
}
