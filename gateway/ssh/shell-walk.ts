// Walks the parse tree of a script the way bash runs it: every simple command counts, through
// `;`, `&&`, `||`, pipes, subshells, `{ }`, if/while/for/case bodies, functions, command and
// process substitutions (in arguments too) and here-docs; the working directory is followed
// through `cd` (after `cd X && cmd`, X; after `cd X; cmd`, X or the old one). A construct this
// walk does not know is unreadable: the line is unclassified, never passed.
import { parseShell, type ShellNode } from './shell-parser.ts';
import { addUnit, MAX_SCRIPT_DEPTH, readSimpleCommand, type CwdAfter, type Reading, type Scope } from './shell-command.ts';
import { joinCwd, singleCwd, type Cwd } from './shell-paths.ts';
import { readOptions } from './shell-options.ts';
import { expandWord, heredocText, stripLeadingTabs, findSubstitutions, ShellUnreadable, wordPieces, type ShellWord } from './shell-words.ts';
import type { Stdin } from './shell-wrappers.ts';

/** How deep statements may nest in one script before it is unclassified. */
export const MAX_NESTING = 150;

const FROM_PIPE: Stdin = { from: 'the output of the command before it in a pipe' };
const FROM_FILE: Stdin = { from: 'a file' };
const FROM_LINE: Stdin = { from: "the channel's input" };

/** Parses `text` and reads every command in it into `reading`. */
export function readScript(reading: Reading, text: string, scope: Scope, stdin: Stdin = FROM_LINE): void {
  if (scope.depth >= MAX_SCRIPT_DEPTH) return void reading.reasons.add(`scripts nest more than ${MAX_SCRIPT_DEPTH} deep`);
  const parsed = parseShell(text);
  if ('error' in parsed) return void reading.reasons.add(parsed.error);
  try {
    const root = parsed.tree.rootNode;
    const continuation = lineContinuationInWord(text, root);
    if (continuation !== null) return void reading.reasons.add(`a line continuation (backslash-newline) inside a word at character ${continuation + 1}`);
    const names = settingsNamed(root);
    if (names.globs) return void reading.reasons.add('the line changes which files globs match (dotglob, GLOBIGNORE)');
    const inner: Scope = { ...scope, home: names.home ? null : scope.home, depth: scope.depth + 1 };
    new Walker(reading, stdin).sequence(root.namedChildren, inner);
  } finally {
    parsed.tree.delete();
  }
}

/**
 * bash removes backslash-newline before it splits words; the grammar reads it as a space. They
 * agree only where a blank precedes it, so anywhere else (outside quotes, comments and here-doc
 * bodies, whose readers handle it) the text is not read.
 */
function lineContinuationInWord(text: string, root: ShellNode): number | null {
  for (let i = text.indexOf('\\\n'); i >= 0; i = text.indexOf('\\\n', i + 2)) {
    let run = 0;
    while (i - run >= 0 && text[i - run] === '\\') run++;
    if (run % 2 === 0) continue;
    let n: ShellNode | null = root.descendantForIndex(i, i + 1);
    let quoted = false;
    for (; n && !quoted; n = n.parent) quoted = ['raw_string', 'string', 'comment', 'heredoc_body', 'ansi_c_string', 'translated_string'].includes(n.type);
    if (quoted) continue;
    const before = text[i - 1];
    if (before !== undefined && before !== ' ' && before !== '\t' && before !== '\n') return i;
  }
  return null;
}

/** Whether the script may set HOME (then `~` is not the login home) or change how globs match. */
function settingsNamed(root: ShellNode): { home: boolean; globs: boolean } {
  const found = { home: false, globs: false };
  const names = (t: string, name: string): boolean => t === name || t.startsWith(`${name}=`) || t.startsWith(`${name}+=`) || t.startsWith(`${name}[`);
  const stack: ShellNode[] = [root];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.type === 'variable_name' || n.type === 'word') {
      const t = n.text;
      if (names(t, 'HOME')) found.home = true;
      if (names(t, 'GLOBIGNORE') || t === 'dotglob') found.globs = true;
    }
    for (const c of n.namedChildren) if (c) stack.push(c);
  }
  return found;
}

const STATEMENTS = new Set(['command', 'redirected_statement', 'list', 'pipeline', 'subshell', 'compound_statement', 'negated_command', 'if_statement', 'while_statement', 'for_statement', 'c_style_for_statement', 'case_statement', 'function_definition', 'variable_assignment', 'variable_assignments', 'declaration_command', 'unset_command', 'test_command', 'do_group']);

interface Redirects {
  paths: ShellWord[];
  stdin: Stdin | null;
  /** Words after a here-doc's delimiter: more arguments of the command. */
  args: ShellNode[];
  /** What follows a here-doc on its line (a pipe, `&& cmd`), with its operator. */
  then: { node: ShellNode; op: string | undefined }[];
}

class Walker {
  private readonly reading: Reading;
  private readonly stdin: Stdin;
  private readonly functions = new Set<string>();
  private nesting = 0;

  constructor(reading: Reading, stdin: Stdin) {
    this.reading = reading;
    this.stdin = stdin;
  }

  sequence(nodes: (ShellNode | null)[], scope: Scope, stdin: Stdin = this.stdin): CwdAfter {
    let after: CwdAfter = { ok: scope.cwd, fail: scope.cwd };
    let cwd = scope.cwd;
    for (const n of nodes) {
      if (!n || n.type === 'comment') continue;
      after = this.statement(n, { ...scope, cwd }, stdin);
      cwd = joinCwd(after.ok, after.fail);
    }
    return after;
  }

  /** One statement; an unreadable one is recorded and leaves the working directory unknown. */
  statement(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    try {
      if (++this.nesting > MAX_NESTING) throw new ShellUnreadable(`statements nest more than ${MAX_NESTING} deep`);
      return this.dispatch(n, scope, stdin);
    } catch (e) {
      if (!(e instanceof ShellUnreadable) || this.nesting >= MAX_NESTING) throw e;
      this.reading.reasons.add(e.message);
      return { ok: null, fail: null };
    } finally {
      this.nesting--;
    }
  }

  private dispatch(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    const same: CwdAfter = { ok: scope.cwd, fail: scope.cwd };
    switch (n.type) {
      case 'command':
        return this.command(n, { paths: [], stdin: null, args: [], then: [] }, scope, stdin);
      case 'redirected_statement':
        return this.redirected(n, scope, stdin);
      case 'list':
        return this.list(n, scope, stdin);
      case 'pipeline':
        n.namedChildren.forEach((c, k) => c && this.statement(c, scope, k === 0 ? stdin : FROM_PIPE));
        return same;
      case 'subshell':
        this.sequence(n.namedChildren, scope, stdin);
        return same;
      case 'compound_statement':
      case 'do_group':
        for (const c of n.namedChildren) if (c && !STATEMENTS.has(c.type) && c.type !== 'comment') this.substitutions(c, scope);
        return this.sequence(n.namedChildren.filter((c) => c && STATEMENTS.has(c.type)), scope, stdin);
      case 'negated_command': {
        const inner = this.sequence(n.namedChildren, scope, stdin);
        return { ok: inner.fail, fail: inner.ok };
      }
      case 'if_statement':
        return this.branches(n, scope, stdin);
      case 'while_statement':
      case 'for_statement':
      case 'c_style_for_statement':
        return this.loop(n, scope, stdin);
      case 'case_statement': {
        let out: Cwd = scope.cwd;
        for (const c of n.namedChildren) {
          if (!c) continue;
          if (c.type !== 'case_item') this.substitutions(c, scope);
          else {
            for (const v of c.childrenForFieldName('value')) if (v) this.substitutions(v, scope);
            const r = this.sequence(c.namedChildren.filter((x) => x && STATEMENTS.has(x.type)), scope, stdin);
            out = joinCwd(out, joinCwd(r.ok, r.fail));
          }
        }
        return { ok: out, fail: out };
      }
      case 'function_definition': {
        const name = n.childForFieldName('name');
        if (name) this.functions.add(name.text);
        // The body runs where the function is called: its relative paths are not known here.
        const body = n.childForFieldName('body');
        if (body) this.statement(body, { ...scope, cwd: null }, stdin);
        const redirects = n.childrenForFieldName('redirect').filter((r): r is ShellNode => r !== null);
        if (redirects.length) this.command(null, this.redirects(redirects, { ...scope, cwd: null }), { ...scope, cwd: null }, stdin);
        return same;
      }
      case 'variable_assignment':
      case 'variable_assignments':
      case 'test_command':
        this.substitutions(n, scope);
        return same;
      case 'declaration_command':
      case 'unset_command':
        this.declaration(n, scope);
        return same;
      default:
        throw new ShellUnreadable(`a shell construct the gateway does not read (${n.type})`);
    }
  }

  /** The commands inside substitutions under `n` run in a subshell. */
  private substitutions(n: ShellNode, scope: Scope): void {
    findSubstitutions(n, (sub) => this.substitution(sub, scope));
  }

  private substitution(sub: ShellNode, scope: Scope): void {
    const redirects = sub.childrenForFieldName('redirect').filter((r): r is ShellNode => r !== null);
    if (redirects.length) this.command(null, this.redirects(redirects, scope), scope, FROM_LINE); // $(< FILE)
    this.sequence(sub.namedChildren.filter((c) => c && STATEMENTS.has(c.type)), scope, FROM_LINE);
  }

  /** The words a word node makes (several after brace expansion). */
  private words(n: ShellNode, scope: Scope): ShellWord[] {
    const pieces = wordPieces(n, (sub) => this.substitution(sub, scope));
    return expandWord(pieces, { home: scope.home, cwd: singleCwd(scope.cwd) });
  }

  private command(n: ShellNode | null, outer: Redirects, scope: Scope, stdin: Stdin): CwdAfter {
    const words: ShellWord[] = [];
    const own: ShellNode[] = [];
    for (const c of n?.namedChildren ?? []) {
      if (!c) continue;
      if (c.type === 'variable_assignment') this.substitutions(c, scope);
      else if (c.type === 'command_name') for (const w of c.namedChildren) w && words.push(...this.words(w, scope));
      else if (c.type.endsWith('_redirect')) own.push(c);
      else if (c.type === 'comment') continue;
      else if (c.type === 'subshell') throw new ShellUnreadable('a subshell among command words');
      else words.push(...this.words(c, scope));
    }
    const r = own.length ? this.redirects(own, scope) : null;
    for (const a of [...outer.args, ...(r?.args ?? [])]) words.push(...this.words(a, scope));
    const input = r?.stdin ?? outer.stdin ?? stdin;
    const after = readSimpleCommand(this.reading, words, [...outer.paths, ...(r?.paths ?? [])], input, scope);
    if (words[0]?.literal && this.functions.has(words[0].literal)) return { ok: null, fail: null };
    return after;
  }

  private redirected(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    const body = n.childForFieldName('body');
    const r = this.redirects(n.childrenForFieldName('redirect').filter((x): x is ShellNode => x !== null), scope);
    let after: CwdAfter;
    if (!body) after = this.command(null, r, scope, stdin);
    else if (body.type === 'command') after = this.command(body, r, scope, stdin);
    else {
      if (r.args.length) throw new ShellUnreadable('here-doc arguments after a compound command');
      after = this.statement(body, scope, r.stdin ?? stdin);
      if (r.paths.length) this.command(null, { ...r, stdin: null }, scope, stdin);
    }
    // A here-doc's line may go on: `cat <<EOF | sh`, `cat <<EOF && rm x`.
    for (const { node: next, op } of r.then) {
      if (next.type === 'pipeline' || op === '|' || op === '|&') {
        this.sequence(next.type === 'pipeline' ? next.namedChildren : [next], scope, FROM_PIPE);
        after = { ok: scope.cwd, fail: scope.cwd };
      } else {
        const from = op === '&&' ? after.ok : op === '||' ? after.fail : joinCwd(after.ok, after.fail);
        const right = this.statement(next, { ...scope, cwd: from }, stdin);
        after = op === '&&' ? { ok: right.ok, fail: joinCwd(after.fail, right.fail) } : op === '||' ? { ok: joinCwd(after.ok, right.ok), fail: right.fail } : right;
      }
    }
    return after;
  }

  /** Files redirections open, the here-doc or here-string a command reads, and a here-doc's continuation. */
  private redirects(nodes: ShellNode[], scope: Scope): Redirects {
    const out: Redirects = { paths: [], stdin: null, args: [], then: [] };
    for (const r of nodes) {
      if (r.type === 'file_redirect') {
        const op = r.children.find((c) => c && !c.isNamed)?.text ?? '';
        const dest = r.childForFieldName('destination');
        if (!dest && (op === '>&-' || op === '<&-')) continue; // closes a descriptor
        if (!dest) throw new ShellUnreadable(`a ${op} redirection without a target`);
        const words = this.words(dest, scope);
        const dup = (op === '>&' || op === '<&') && words.every((w) => w.literal === '-' || (w.literal !== null && isDigits(w.literal)));
        if (!dup) out.paths.push(...words);
        if (op === '<' || op === '<>') out.stdin = FROM_FILE;
      } else if (r.type === 'herestring_redirect') {
        const word = r.namedChildren.find((c) => c && c.type !== 'file_descriptor');
        const w = word ? this.words(word, scope) : [];
        out.stdin = w.length === 1 && w[0].literal !== null ? { script: `${w[0].literal}\n` } : { from: 'a here-string with expansions' };
      } else if (r.type === 'heredoc_redirect') this.heredoc(r, scope, out);
      else throw new ShellUnreadable(`a redirection the gateway does not read (${r.type})`);
    }
    return out;
  }

  private heredoc(r: ShellNode, scope: Scope, out: Redirects): void {
    const start = r.children.find((c) => c?.type === 'heredoc_start')?.text ?? '';
    const quoted = start.includes("'") || start.includes('"') || start.includes('\\');
    const stripTabs = r.children.some((c) => c && !c.isNamed && c.text === '<<-');
    const body = r.children.find((c) => c?.type === 'heredoc_body');
    let text = body?.text ?? '';
    let known = true;
    if (body && !quoted) {
      if (text.includes('`')) throw new ShellUnreadable('a `...` substitution in a here-doc');
      for (const c of body.namedChildren) if (c && c.type !== 'heredoc_content') known = false;
      this.substitutions(body, scope);
      text = heredocText(text);
    }
    if (stripTabs) text = stripLeadingTabs(text);
    out.stdin = known ? { script: text } : { from: 'a here-doc with expansions' };
    for (const c of r.childrenForFieldName('redirect')) if (c) Object.assign(out, mergeRedirects(out, this.redirects([c], scope)));
    for (const a of r.childrenForFieldName('argument')) if (a) out.args.push(a);
    for (const c of r.namedChildren) if (c && c.type === 'pipeline') out.then.push({ node: c, op: '|' });
    const right = r.childForFieldName('right');
    if (right) out.then.push({ node: right, op: r.childForFieldName('operator')?.text });
  }

  private list(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    const [left, right] = n.namedChildren.filter((c): c is ShellNode => c !== null && c.type !== 'comment');
    const op = n.children.find((c) => c && !c.isNamed)?.text;
    const l = this.statement(left, scope, stdin);
    if (!right) return l;
    if (op === '&&') {
      const r = this.statement(right, { ...scope, cwd: l.ok }, stdin);
      return { ok: r.ok, fail: joinCwd(l.fail, r.fail) };
    }
    if (op === '||') {
      const r = this.statement(right, { ...scope, cwd: l.fail }, stdin);
      return { ok: joinCwd(l.ok, r.ok), fail: r.fail };
    }
    return this.statement(right, { ...scope, cwd: joinCwd(l.ok, l.fail) }, stdin);
  }

  /** if/elif/else: each condition, then its branch; afterwards the directory any branch left. */
  private branches(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    let cwd = scope.cwd; // where the next condition (or the else branch) starts
    let out: Cwd = [];
    let hasElse = false;
    for (const clause of [n, ...n.namedChildren.filter((c): c is ShellNode => c !== null && (c.type === 'elif_clause' || c.type === 'else_clause'))]) {
      const cond: ShellNode[] = [];
      const body: ShellNode[] = [];
      let inBody = clause.type === 'else_clause';
      for (const c of clause.children) {
        if (!c) continue;
        if (!c.isNamed && c.type === 'then') inBody = true;
        else if (c.isNamed && STATEMENTS.has(c.type)) (inBody ? body : cond).push(c);
      }
      if (clause.type === 'else_clause') {
        hasElse = true;
        out = joinCwd(out, this.flat(this.sequence(body, { ...scope, cwd }, stdin)));
        continue;
      }
      const c = this.sequence(cond, { ...scope, cwd }, stdin);
      out = joinCwd(out, this.flat(this.sequence(body, { ...scope, cwd: c.ok }, stdin)));
      cwd = c.fail;
    }
    if (!hasElse) out = joinCwd(out, cwd);
    return { ok: out, fail: out };
  }

  private flat(a: CwdAfter): Cwd {
    return joinCwd(a.ok, a.fail);
  }

  /** A loop's body runs with the directory any earlier round left: if a round changes it, unknown. */
  private loop(n: ShellNode, scope: Scope, stdin: Stdin): CwdAfter {
    const round = (s: Scope): Cwd => {
      let cwd = s.cwd;
      for (const c of n.namedChildren) {
        if (!c) continue;
        if (STATEMENTS.has(c.type)) cwd = joinCwd(cwd, this.flat(this.statement(c, { ...s, cwd }, stdin)));
        else this.substitutions(c, s);
      }
      return cwd;
    };
    const after = round(scope);
    if (sameSet(after, scope.cwd)) return { ok: after, fail: after };
    round({ ...scope, cwd: null });
    return { ok: null, fail: null };
  }

  /** `export A=1 B`, `declare -x`, `local`, `unset`: a unit of their own; substitutions in values run. */
  private declaration(n: ShellNode, scope: Scope): void {
    const keyword = n.children.find((c) => c && !c.isNamed)?.text ?? n.type;
    const words: ShellWord[] = [];
    for (const c of n.namedChildren) {
      if (!c) continue;
      if (c.type === 'variable_assignment' || c.type === 'variable_name') {
        this.substitutions(c, scope);
        words.push({ literal: null, pattern: c.text.includes('=') ? `${c.text.slice(0, c.text.indexOf('='))}=*` : c.text, dynamic: true, glob: false, first: c.text[0] });
      } else words.push(...this.words(c, scope));
    }
    const o = readOptions(words);
    addUnit(this.reading, { ssh: 'exec', command: [keyword, ...words.map((w) => w.pattern)].join(' '), program: keyword, options: o.options, paths: [] });
  }
}

function mergeRedirects(a: Redirects, b: Redirects): Redirects {
  return { paths: [...a.paths, ...b.paths], stdin: b.stdin ?? a.stdin, args: [...a.args, ...b.args], then: [...a.then, ...b.then] };
}

function sameSet(a: Cwd, b: Cwd): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x) => b.includes(x));
}

function isDigits(s: string): boolean {
  if (s === '') return false;
  for (const c of s) if (c < '0' || c > '9') return false;
  return true;
}
