// How each protocol's commands are shown: replay's terminal lines, the report's HTML, the job
// summary's table and the approval comment's markdown. An adapter registers one Renderer for its
// kinds (`pg.` draws pg.query and pg.function-call); the evidence tools receive the set from
// whoever starts them (the CLI, the action) and never import an adapter. A kind no renderer
// claims is drawn by the generic renderer: its kind, text and every field as JSON. Never dropped.
import type { TimelineCommand } from './timeline.ts';

/** A command as one-line and markdown views know it (a held request has no result yet). */
export interface CommandView { kind?: string; text: string }

export interface Renderer {
  /** The kinds it draws: every kind that starts with this prefix (`pg.`); the longest prefix wins. */
  readonly kinds: string;
  /** The protocol as people name it (`PostgreSQL`). */
  readonly protocol: string;
  /** What the report's text filter searches in these commands (`SQL`). */
  readonly searchLabel: string;
  /** The language of a markdown code fence around the command's text (`sql`, `sh`, `http`). */
  readonly fence: string;
  /** A result's count in words (`2 rows`). */
  count(n: number): string;
  /** The command on one line (pending, the job summary's table); callers escape it. */
  line(c: CommandView): string;
  /** Lines `replay` prints under the command (plain text: the caller escapes and indents). */
  notes(c: TimelineCommand): string[];
  /** Short facts for the report's command heading (tags, tables), plain text. */
  meta(c: TimelineCommand): string[];
  /**
   * The report's view of the command: its text in an element of class `cmd-text` (what the text
   * filter searches), then its details. Everything from the log goes through `esc`.
   */
  html(c: TimelineCommand, esc: (v: unknown) => string): string;
  /** The command's text as a markdown code block (the approval comment). */
  markdown(c: CommandView): string;
}

/** A markdown code block that no backtick run in `text` can close early. */
export function fenced(text: string, language: string): string {
  const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${fence}${language}\n${text}\n${fence}`;
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Every field of a command and its result that the shared shape shows nowhere else. */
export function fieldsOf(c: TimelineCommand): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: c.kind, status: c.status };
  if (c.facts.length) out.facts = c.facts;
  if (Object.keys(c.details).length) out.details = c.details;
  if (c.count !== null) out.count = c.count;
  if (Object.keys(c.resultDetails).length) out.result = c.resultDetails;
  if (Object.keys(c.extra.command).length) out.command_fields = c.extra.command;
  if (Object.keys(c.extra.result).length) out.result_fields = c.extra.result;
  return out;
}

/** Draws a kind no adapter registered: its kind, its text and every field as JSON. */
export const genericRenderer: Renderer = {
  kinds: '',
  protocol: 'unknown',
  searchLabel: 'text',
  fence: '',
  count: (n) => `count ${n}`,
  line: (c) => `${c.kind ? `[${c.kind}] ` : '[no kind] '}${oneLine(c.text)}`,
  notes: (c) => [`kind ${c.kind || '(none)'} (no renderer for it): ${JSON.stringify(fieldsOf(c))}`],
  meta: (c) => [`kind ${c.kind || '(none)'}`],
  html: (c, esc) => `<pre class="cmd-text">${esc(c.text)}</pre>
<div class="line"><span class="k">kind ${esc(c.kind || '(none)')}, shown as recorded:</span></div><pre class="fields">${esc(JSON.stringify(fieldsOf(c), null, 2))}</pre>`,
  markdown: (c) => `kind \`${(c.kind || '(none)').replace(/`/g, "'")}\`:\n\n${fenced(c.text, '')}`,
};

export class RendererSet {
  private readonly list: readonly Renderer[];
  constructor(list: readonly Renderer[]) {
    // Longest prefix first, so `pg.copy.` could refine `pg.`.
    this.list = [...list].filter((r) => r.kinds !== '').sort((a, b) => b.kinds.length - a.kinds.length);
  }

  /** The renderer of a kind; the generic one when none claims it. */
  for(kind: string | undefined): Renderer {
    return (kind && this.list.find((r) => kind.startsWith(r.kinds))) || genericRenderer;
  }

  /** What a text filter over these kinds searches (`SQL`, `SQL or command line`); no kinds: every registered one's. */
  searchLabel(kinds: Iterable<string>): string {
    const given = [...kinds];
    const labels = [...new Set(given.length ? given.map((k) => this.for(k).searchLabel) : this.list.map((r) => r.searchLabel))];
    return labels.length ? labels.join(' or ') : 'text';
  }
}

export function rendererSet(list: readonly Renderer[] = []): RendererSet {
  return new RendererSet(list);
}
