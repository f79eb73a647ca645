// Loaded into each test file's process by run-tests.ts (NODE_OPTIONS=--import): at exit, appends the CPU seconds
// the file used (its own threads and its reaped children: CLI runs, browsers) to $REFSCOPE_TEST_CPU_DIR/cpu.
// Plain JS, so it loads before tsx; a no-op in any other process (a CLI the test starts inherits NODE_OPTIONS).
import { appendFileSync, readFileSync } from 'node:fs';

const dir = process.env.REFSCOPE_TEST_CPU_DIR;
const file = process.argv[1] ?? '';
if (dir && file.endsWith('.test.ts')) {
  process.on('exit', () => {
    const own = process.cpuUsage();
    let children = 0;
    try {
      // utime, stime of the reaped children: fields 16, 17 of /proc/self/stat, in USER_HZ (100) ticks.
      const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
      children = (Number(f[13]) + Number(f[14])) / 100;
    } catch {
      // not Linux: the file's own time only
    }
    appendFileSync(`${dir}/cpu`, `${file}\t${((own.user + own.system) / 1e6 + children).toFixed(2)}\n`);
  });
}
