import type { StackKind } from './readers/sink.js';

/**
 * Distinct stacks of one trace. A stack is interned by its frames; `callsite` is the first frame that is not
 * tracing, kprobe, allocator, refcount or generic GUP plumbing, i.e. the code that asked for the page or pin.
 */

export interface StackRow {
  id: number;
  kind: StackKind;
  frames: string[];
  callsite: string | null;
  uses: number;
}

// Frames that say how a page was counted, not who wanted it.
const PLUMBING = new RegExp(
  '^(' +
    [
      'trace_event_raw_event_\\w*', 'perf_trace_\\w*', '__traceiter_\\w*', 'trace_\\w+', '__trace_\\w+', 'ftrace_\\w*',
      'kprobe\\w*', 'aggr_pre_handler', 'pre_handler_kretprobe', 'arch_rethook_\\w*', 'rethook_\\w*', '0x[0-9a-f]+',
      '__page_ref_\\w*', 'page_ref_\\w*', 'folio_ref_\\w*', 'set_page_count', 'init_page_count',
      '__alloc_pages\\w*', '__alloc_frozen_pages\\w*', 'alloc_pages\\w*', 'alloc_frozen_pages\\w*', 'get_page_from_freelist',
      'rmqueue\\w*', '__rmqueue\\w*', 'prep_new_page', 'post_alloc_hook', '__folio_alloc\\w*', 'folio_alloc\\w*',
      'vma_alloc_folio\\w*', 'alloc_pages_mpol\\w*', '__get_free_pages', 'get_free_pages\\w*', 'get_zeroed_page\\w*',
      'free_unref_page\\w*', 'free_unref_folios', '__free_pages\\w*', 'free_pages\\w*', '__free_one_page', 'free_pcppages_bulk',
      'free_frozen_pages', '__put_page', 'put_page\\w*', '__folio_put\\w*', 'folio_put\\w*', 'folios_put\\w*',
      'release_pages', 'put_pages_list',
      'try_grab_\\w+', 'try_get_folio', 'gup_put_folio', 'put_compound_head', 'unpin_user_page\\w*', 'unpin_folio\\w*',
      '__get_user_pages\\w*', '__gup_\\w+', 'gup_\\w+', 'internal_get_user_pages_fast', 'get_user_pages\\w*',
      'pin_user_pages\\w*', 'follow_page_\\w+', 'follow_\\w+_pte', '__iov_iter_get_pages\\w*', 'iov_iter_get_pages\\w*',
      'iov_iter_extract_pages', 'lockless_pages_from_mm',
    ].join('|') +
    ')(\\+.*)?$',
);

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

export function callsiteOf(frames: string[]): string | null {
  for (const f of frames) {
    const name = f.split(' ')[0];
    if (!PLUMBING.test(name)) return name.replace(/\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/, '');
  }
  return null;
}

export class StackTable {
  readonly rows: StackRow[] = [];
  private readonly byKey = new Map<string, StackRow>();
  private readonly ids = new Set<number>();
  private nextId = 1;

  /**
   * The id of this stack, new or known. `preferId` (structured input that carries the stack ids of an export)
   * is used for a new stack when no other stack has it yet, so a round-trip keeps `events.stack_id`. `uses` is
   * 0 for a stack whose event is missing or did not parse: kept, attached to nothing.
   */
  intern(kind: StackKind, frames: string[], preferId?: number, uses = 1): number {
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
    row.uses += uses;
    return row.id;
  }
}
