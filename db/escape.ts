/**
 * Text from a trace (comms, payloads, unparsed lines, file names) reaches terminals and spreadsheets. The kernel
 * allows any byte but NUL in a comm, so such text can carry escape sequences (retitle or clear the terminal),
 * line separators and bidi overrides (hide or reorder what is shown), or spreadsheet formulas. Lowest layer, so
 * that queries/, export/ and cli/ share one definition.
 */

/**
 * Characters escaped before text is shown: C0 controls, DEL, C1 controls, U+2028/U+2029 (line and paragraph
 * separators) and the bidi embeddings, overrides and isolates U+202A-202E, U+2066-2069.
 */
export const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The escape of one control character: \n \t \r by name, \xNN below U+0100, else \uNNNN. */
export function escapeChar(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  const n = c.charCodeAt(0);
  return n < 0x100 ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
}

/** Escape every control character of untrusted text so it cannot drive the terminal. */
export function escapeControl(s: string): string {
  return s.replace(CONTROL_CHARS, escapeChar);
}

/** Escape control characters but keep line breaks: for multi-line messages and quoted CSV fields. */
export function escapeControlKeepNewlines(s: string): string {
  return s.replace(CONTROL_CHARS, (c) => (c === '\n' ? c : escapeChar(c)));
}

/** Cells a spreadsheet runs as a formula start with one of these (OWASP "CSV injection"). */
export const FORMULA_START = /^[=+\-@\t\r]/;

/** A plain negative number is data, not a formula: it keeps its sign. */
export const NEGATIVE_NUMBER = /^-(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A text cell of refscope's CSV output: a leading quote (') neutralises a would-be formula (except plain
 * negative numbers) and control characters are escaped (line breaks stay: a quoted CSV field holds them).
 */
export function csvSafeText(s: string): string {
  const t = FORMULA_START.test(s) && !NEGATIVE_NUMBER.test(s) ? "'" + s : s;
  return escapeControlKeepNewlines(t);
}
