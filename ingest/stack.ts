import type { StackKind } from './readers/sink.js';

/**
 * Distinct stacks of one trace. A stack is interned by its frames; `callsite` is the first frame outside the
 * tracing machinery and mm / GUP internals (CALLSITE_SKIP, docs/formats.md §1.9), i.e. the code that asked
 * for the page or pin; `frames_shown` is the stack without the tracing machinery a probe or tracepoint adds on top.
 */

export interface StackRow {
  id: number;
  kind: StackKind;
  frames: string[];
  /** By the documented rule; `ingest --callsite-skip` recomputes it with the user's additions (callsiteOf). */
  callsite: string | null;
  uses: number;
}

// Frames a probe or tracepoint adds on top of the code it observes; a bare address is not a name (the kprobe's
// ftrace trampoline 0xffffffffc..., an unsymbolized module or user frame).
const TRACING = [
  'trace_event_raw_event_\\w*', 'perf_trace_\\w*', '__traceiter_\\w*', 'trace_\\w+', '__trace_\\w+',
  'ftrace_\\w*', 'arch_ftrace_\\w*', 'kprobe\\w*', 'kretprobe\\w*', 'aggr_\\w+', 'pre_handler_kretprobe', 'opt_pre_handler',
  'optimized_callback', 'arch_rethook_\\w*', 'rethook_\\w*', 'perf_\\w+', '0x[0-9a-f]+',
];

/**
 * The documented call-site rule: function names (offset, module and `.cold`/`.isra.N`-like suffixes removed) that
 * say how a page was counted, not who wanted it. Matched whole. docs/formats.md §1.9 lists the families.
 */
export const CALLSITE_SKIP: Record<string, string[]> = {
  tracing: TRACING,
  // Refcount helpers: every get / put / pin goes through them.
  refcount: [
    '__page_ref_\\w*', 'page_ref_\\w*', 'folio_ref_\\w*', 'set_page_count', 'init_page_count', 'get_page', '__get_page\\w*',
    'put_page\\w*', '__put_page', 'folio_get', 'folio_try_get\\w*', 'try_get_\\w+', '__folio_put\\w*', 'folio_put\\w*',
    'folios_put\\w*', 'release_pages', 'put_pages_list', 'gup_put_folio', 'put_compound_head', 'unpin_user_page\\w*',
    'unpin_folio\\w*',
  ],
  // GUP internals: the page walk (follow_page_pte for a small page, follow_trans_huge_pmd for a THP: one
  // registration, two paths), the fast path and the FOLL_LONGTERM migration; the caller of pin_user_pages() is named.
  gup: [
    'try_grab_\\w+', '__get_user_pages\\w*', '__gup_\\w+', 'gup_\\w+', 'internal_get_user_pages_fast', 'get_user_pages?\\w*',
    'pin_user_pages?\\w*', '(?:__)?follow_\\w+', 'faultin_page', 'lockless_pages_from_mm', 'check_and_migrate_movable_pages\\w*',
    'migrate_longterm_unpinnable_\\w+', 'collect_longterm_unpinnable_\\w+', '__iov_iter_get_pages\\w*',
    'iov_iter_get_pages\\w*', 'iov_iter_extract_pages',
  ],
  // The page allocator (kmem stacks): the caller of alloc_pages() / folio_alloc() / free_pages() is named.
  allocator: [
    '__alloc_pages\\w*', '__alloc_frozen_pages\\w*', 'alloc_pages\\w*', 'alloc_frozen_pages\\w*', 'get_page_from_freelist',
    'rmqueue\\w*', '__rmqueue\\w*', 'prep_new_page', 'post_alloc_hook', '__folio_alloc\\w*', 'folio_alloc\\w*',
    'vma_alloc_folio\\w*', '__get_free_pages', 'get_free_pages\\w*', 'get_zeroed_page\\w*', 'free_unref_page\\w*',
    'free_unref_folios', '__free_pages\\w*', 'free_pages\\w*', '__free_one_page', 'free_pcppages_bulk', '(?:__)?free_frozen_pages\\w*',
  ],
};

// `.cold`, `.isra.0`, `.constprop.0.isra.0`, `.part.0`, `.lto_priv.0`: GCC's clones keep the function's name.
const CLONE_SUFFIX = /\.(cold|isra|constprop|part|lto_priv|llvm)(\.\w+)*$/;
const OFFSET = /\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/;

/** A frame's function: `func+0x1c/0x80 [mod]` -> `func` (a bare address stays as it is). */
export function frameFunction(frame: string): string {
  return frame.split(' ')[0]!.replace(OFFSET, '');
}

function wholeMatch(parts: string[]): RegExp {
  return new RegExp('^(?:' + parts.join('|') + ')$');
}

const TRACING_RE = wholeMatch(TRACING);

export interface CallsiteRule {
  skip: RegExp;
  /** The user's additions (`ingest --callsite-skip`), as given; null: the documented list only. */
  extra: string | null;
}

/** The documented list plus `extra` (a regular expression over function names, matched whole). */
export function callsiteRule(extra?: string | null): CallsiteRule {
  const parts = Object.values(CALLSITE_SKIP).flat();
  if (extra === undefined || extra === null || extra === '') return { skip: wholeMatch(parts), extra: null };
  try {
    new RegExp(extra);
  } catch (e) {
    throw new Error(`call-site skip ${JSON.stringify(extra)} is not a regular expression (${(e as Error).message})`);
  }
  return { skip: wholeMatch([...parts, `(?:${extra})`]), extra };
}

export const DEFAULT_CALLSITE_RULE = callsiteRule();

/** The first frame whose function the rule does not skip, without its offset; null when every frame is skipped. */
export function callsiteOf(frames: string[], rule: CallsiteRule = DEFAULT_CALLSITE_RULE): string | null {
  for (const f of frames) {
    const fn = frameFunction(f);
    if (!rule.skip.test(fn.replace(CLONE_SUFFIX, ''))) return fn;
  }
  return null;
}

/** Frames without the tracing machinery on top (innermost first); all frames if nothing else is left. */
export function shownFrames(frames: string[]): string[] {
  let i = 0;
  while (i < frames.length && TRACING_RE.test(frameFunction(frames[i]!).replace(CLONE_SUFFIX, ''))) i++;
  return i < frames.length ? frames.slice(i) : frames;
}

/**
 * One frame, whatever the renderer printed: `function[+0xoff[/0xsize]][ [module]]`, the address dropped (it
 * changes with KASLR, names don't); a frame with no symbol is `0x<address>`. ftrace prints `func+0x1c/0x80`
 * (sym-offset), `func+0x1c/0x80 [mod]` (%pS in a module), `func+0x1c/0x80 <ffffffff8117c9e4>` (sym-addr) or
 * `<ffffffff8117c9e4>`; trace-cmd `func (ffffffff8117c9e4)`; perf `func+0x12` with the dso apart (perf.ts).
 */
export function normalFrame(fn: string, off?: string, size?: string, module?: string): string {
  let s = fn;
  if (off !== undefined) s += '+' + off.toLowerCase() + (size !== undefined ? '/' + size.toLowerCase() : '');
  return module ? `${s} [${module}]` : s;
}

// func[+off[/size]] [ [module]] [ (addr) | <addr>]: the func has no blanks; by the shape of a kernel symbol.
const FTRACE_FRAME = /^([^\s+<>()\[\]]+)(?:\+(0x[0-9a-fA-F]+)(?:\/(0x[0-9a-fA-F]+))?)?(?:\s+\[([^\]\s]+)\])?(?:\s+(?:\(([0-9a-fA-Fx]+)\)|<([0-9a-fA-Fx]+)>))?$/;
const ADDR_ONLY = /^<?(?:0x)?([0-9a-fA-F]{6,16})>?$/;

/** The text after ` => ` as a normal frame; other shapes (user stacks `/path[+0x..]`) are kept as printed. */
export function ftraceFrame(text: string): string {
  const a = ADDR_ONLY.exec(text);
  if (a && !FTRACE_NAME_ONLY.test(text)) return '0x' + a[1].toLowerCase();
  const m = text.length <= 1024 ? FTRACE_FRAME.exec(text) : null;
  return m ? normalFrame(m[1], m[2], m[3], m[4]) : text;
}
// A bare symbol that happens to be all hex letters (`deadbeef`-like names are rare, `<addr>` is not).
const FTRACE_NAME_ONLY = /^[a-fA-F]+$/;

export class StackTable {
  readonly rows: StackRow[] = [];
  private readonly byKey = new Map<string, StackRow>();
  private readonly ids = new Set<number>();
  private nextId = 1;
  private readonly trie: Record<StackKind, TrieNode> = { kernel: { next: undefined, row: undefined }, user: { next: undefined, row: undefined } };
  private nodes = 0;

  /**
   * The id of this stack, new or known. `preferId` (structured input that carries the stack ids of an export)
   * is used for a new stack when no other stack has it yet, so a round-trip keeps `events.stack_id`. `uses` is
   * 0 for a stack whose event is missing or did not parse: kept, attached to nothing.
   */
  intern(kind: StackKind, frames: string[], preferId?: number, uses = 1): number {
    const row = this.row(kind, frames, preferId);
    row.uses += uses;
    return row.id;
  }

  private row(kind: StackKind, frames: string[], preferId?: number): StackRow {
    // The stack's node in a trie over its frames (readers hand repeated frames as the same strings, their hashes
    // kept): a stack seen before is found without building its key. The key still decides a new node's row.
    let node: TrieNode | undefined = this.trie[kind];
    for (let i = 0; node !== undefined && i < frames.length; i++) {
      const f = frames[i]!;
      let n: TrieNode | undefined = node.next?.get(f);
      if (n === undefined && this.nodes < MAX_TRIE_NODES) {
        this.nodes++;
        (node.next ??= new Map()).set(f, (n = { next: undefined, row: undefined }));
      }
      node = n;
    }
    if (node?.row !== undefined) return node.row;
    const key = kind + '\n' + frames.join('\n');
    let row = this.byKey.get(key);
    if (!row) {
      let id = preferId !== undefined && preferId > 0 && !this.ids.has(preferId) ? preferId : this.nextId;
      while (this.ids.has(id)) id++;
      if (id >= this.nextId) this.nextId = id + 1;
      row = { id, kind, frames, callsite: callsiteOf(frames), uses: 0 };
      this.ids.add(id);
      this.rows.push(row);
      this.byKey.set(key, row);
    }
    if (node !== undefined) node.row = row;
    return row;
  }
}

interface TrieNode {
  next: Map<string, TrieNode> | undefined;
  row: StackRow | undefined;
}

/** Trie nodes kept (one per distinct frame prefix, a Map each: ~200 bytes); stacks past them are found by their key alone. */
const MAX_TRIE_NODES = 1 << 16;
