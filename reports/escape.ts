/**
 * Escaping for every output format. Task names, trace markers, file names and stack frames come from the traced
 * machine: any unprivileged process can name itself `<img src=x onerror=alert(1)>`. Every untrusted string goes
 * through exactly one of these functions on its way out; nothing else builds markup from data.
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(v: unknown): string {
  return display(v).replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>`, `&` and the JS line separators become \u escapes,
 * so no `</script>` or `<!--` can end or change the block whatever the data holds. JSON.parse restores the text.
 */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v, jsonReplacer)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** JSON.stringify replacer: BigInt as a number when exact, else as a decimal string. */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return v;
}

/**
 * Text for a Markdown table cell: `|` and backslash escaped, `<`, `>`, `&` and backquote as entities (GitHub and
 * most mail renderers allow inline HTML, so `<img ...>` must not reach them as markup), newlines as spaces, and the
 * emphasis/link characters escaped so a comm cannot restyle the table.
 */
export function escapeMdCell(v: unknown): string {
  return display(v)
    .replace(/[\r\n]+/g, ' ')
    .replace(/([\\|*_[\]#~])/g, '\\$1')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/`/g, '&#96;');
}

/**
 * An inline code span. Inside backquotes Markdown does not interpret `\`, entities or emphasis, so the only
 * dangers are the backquote itself (it would end the span), `|` (ends a table cell even inside a span on GitHub),
 * newlines, and `<`/`>` (kept literal inside a span by CommonMark, but not by every renderer a mail client uses):
 * those are replaced by look-alike characters rather than escapes, which a code span would print verbatim.
 */
export function mdCode(v: unknown): string {
  const s = display(v)
    .replace(/[\r\n]+/g, ' ')
    .replace(/`/g, 'ˋ')
    .replace(/\|/g, '¦')
    .replace(/</g, '‹')
    .replace(/>/g, '›');
  return '`' + (s.startsWith(' ') || s.endsWith(' ') ? ` ${s} ` : s) + '`';
}

/** How a database value prints as text: NULL as empty, BigInt exact, objects as JSON. */
export function display(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v, jsonReplacer);
}
