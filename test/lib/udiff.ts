/** A unified diff of two texts by lines (LCS; the expectation files are small), for test failure messages. */
export function unifiedDiff(expected: string, actual: string, name = 'expected', context = 3): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: { op: ' ' | '-' | '+'; text: string; ai: number; bi: number }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ op: ' ', text: a[i]!, ai: i++, bi: j++ });
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ op: '-', text: a[i]!, ai: i++, bi: j });
    else ops.push({ op: '+', text: b[j]!, ai: i, bi: j++ });
  }
  const out = [`--- ${name}`, '+++ actual'];
  const changed = ops.flatMap((o, k) => (o.op === ' ' ? [] : [k]));
  let g = 0;
  while (g < changed.length) {
    // A hunk: changes less than 2 * context equal lines apart, with context lines around.
    let last = g;
    while (last + 1 < changed.length && changed[last + 1]! - changed[last]! <= 2 * context) last++;
    const hunk = ops.slice(Math.max(0, changed[g]! - context), Math.min(ops.length, changed[last]! + context + 1));
    const aLen = hunk.filter((o) => o.op !== '+').length;
    const bLen = hunk.filter((o) => o.op !== '-').length;
    out.push(`@@ -${hunk[0]!.ai + 1},${aLen} +${hunk[0]!.bi + 1},${bLen} @@`);
    for (const o of hunk) out.push(o.op + o.text);
    g = last + 1;
  }
  return out.join('\n');
}
