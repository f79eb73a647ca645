import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Kallsyms } from '../../ingest/kallsyms.js';

/**
 * Kallsyms.parse reads ASCII text by a scan of its bytes and anything else (a non-ASCII byte, a `\r`)
 * line by line with the per-line regex: both must give the same table. The same lines are parsed both ways (a
 * non-ASCII comment line sends the whole text down the per-line path) and every address around every symbol is
 * looked up in each.
 */
const LINES = [
  'ffffffff81000000 T _text',
  'ffffffff81000000 T _stext',
  '  ffffffff81001000 t\thelper', // leading blanks, a tab between type and name
  'ffffffff81001800\tW\t\vweak_fn', // tabs and a vertical tab as separators
  '0000000000001000 A fixed_percpu_data', // absolute: left out
  'ffffffff81002000 a local_abs',
  'ffffffff81002100 T $x', // ARM mapping symbol: left out
  'ffffffff81002200 TT two_letter_type', // not a line of the format
  'ffffffff81002300 T', // no name
  'ffffffff81002400 T ', // blank name
  '1ffffffff81002500 T seventeen_digits', // more than 16 digits
  'ffffffff8100260g T bad_hex',
  'ffffffff81002700 T with_module [mod_a]',
  'ffffffff81002800 T unclosed [mod_b',
  'ffffffff81002900 T glued[mod_c]', // no blank before the bracket: part of the name
  'ffffffff81002a00 T two_blanks \t [mod_d] trailing text',
  'ffffffff81002b00 T empty_module []',
  'ffffffff81002c00 T bracket_later x [mod_e]', // text before the bracket: no module
  '0000000000000000 T zero_address',
  'ffffffffc0100000 t mod_fn\t[mymod]',
  'ffffffffc0100000 t mod_alias\t[mymod]',
  'ffffffffc0000000 t before_mod_fn [othermod]', // out of order
  '81003000 T short_address',
  '\f\vffffffff81003100 T blank_led', // a form feed and a vertical tab before the address
  '',
  '# a comment',
];

function addresses(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of text.matchAll(/^\s*([0-9a-fA-F]{1,16})/gm)) {
    const v = BigInt('0x' + m[1]);
    for (const d of [-1n, 0n, 1n, 0x80n]) {
      const x = BigInt.asUintN(64, v + d);
      out.push([Number(x >> 32n), Number(x & 0xffffffffn)]);
    }
  }
  return out;
}

describe('Kallsyms', () => {
  it('the ASCII scan and the per-line regex give the same symbols, names and modules', () => {
    const ascii = LINES.join('\n');
    const other = ascii + '\n# non-ASCII: é';
    const fast = Kallsyms.parse(ascii);
    const slow = Kallsyms.parse(other);
    assert.equal(fast.size, slow.size);
    assert.equal(fast.size, 15);
    for (const [hi, lo] of addresses(ascii)) assert.deepEqual(fast.lookup(hi, lo), slow.lookup(hi, lo), `${hi.toString(16)}${lo.toString(16)}`);
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002710), { name: 'with_module', offset: 16, module: 'mod_a' });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002800), { name: 'unclosed', offset: 0, module: null });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002900), { name: 'glued[mod_c]', offset: 0, module: null });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002a00), { name: 'two_blanks', offset: 0, module: 'mod_d' });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002b00), { name: 'empty_module', offset: 0, module: '' });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81002c00), { name: 'bracket_later', offset: 0, module: null });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81001804), { name: 'weak_fn', offset: 4, module: null });
    assert.deepEqual(fast.lookup(0, 0x81003001), { name: 'short_address', offset: 1, module: null });
    assert.deepEqual(fast.lookup(0xffffffff, 0x81003100), { name: 'blank_led', offset: 0, module: null });
    // Aliases: the one listed first.
    assert.deepEqual(fast.lookup(0xffffffff, 0xc0100000), { name: 'mod_fn', offset: 0, module: 'mymod' });
    // A \r ends a line's name as a blank does (\r\n line ends), on the per-line path.
    const crlf = Kallsyms.parse(LINES.join('\r\n'));
    for (const [hi, lo] of addresses(ascii)) assert.deepEqual(crlf.lookup(hi, lo), fast.lookup(hi, lo));
  });
});
