// What the server holds under each prepared-statement and portal name, as far as its answers
// confirmed. A name gets a statement only on ParseComplete or the CommandComplete of a SQL
// PREPARE, a portal only on BindComplete; it loses them on CloseComplete, DEALLOCATE, DISCARD
// ALL, CLOSE, an error or the end of the transaction. Changes the server has not answered yet
// wait in send order: a message that names a statement or portal is resolved against them.
//
// Resolution at send time (the command record is written before the Execute is forwarded):
// - the newest unanswered change to the name was sent in the same Sync block: the server applies
//   it before this message, or fails it and then discards this message too, so its outcome is
//   the only one that can run;
// - it was sent in an earlier block: it may succeed or fail, and this message runs either way, so
//   what runs is unknown;
// - no unanswered change: what the server confirmed; a name it never confirmed is unknown.
// Unknown is never guessed: the command is recorded and decided as unclassified.
//
// Names are kept as the server keys them (serverKey): its hash tables of prepared statements
// and portals compare the first 63 bytes of a name (NAMEDATALEN - 1) in the server's encoding,
// and its parser truncates SQL identifiers to 63 bytes, so `Close` of one long name closes
// another that shares those bytes. A name whose server bytes the gateway cannot know (not ASCII
// while client or server encoding is not UTF8, or not valid UTF-8 as sent) is never matched:
// changing it makes every name of its kind unknown, and naming it is unknown.
import type { PreparedClasses } from './sql-classifier.ts';
import type { Portal, Statement } from './response-queue.ts';

export type Resolved<T> = { known: T } | { unknown: string };

/** A change to one name (or, with name null, to any name of its kind), pending the server's answer. */
export interface Change {
  kind: 'statement' | 'portal';
  name: string | null;
  block: number;
  /** What the name holds once confirmed: null for nothing, undefined when the gateway cannot tell. */
  to: Statement | Portal | null | undefined;
  settled: boolean;
  /**
   * The server failed or discarded it: the rest of its block is discarded too, so the messages
   * after it in the block are still recorded against it (they run nothing).
   */
  skipped?: boolean;
}

/** What running a statement does to the names (see namespaceEffects in sql-classifier.ts). */
export type Effect =
  | { kind: 'prepare'; name: string; statement: Statement }
  | { kind: 'deallocate'; name: string | null }
  | { kind: 'discard-all' }
  | { kind: 'close-cursor'; name: string | null }
  | { kind: 'none' };

/**
 * Changes of the current block the server discards are kept so later messages of the block are
 * recorded against them; past this many they collapse into one that makes every name unknown
 * until the Sync, so a client that never sends Sync cannot grow the list without bound.
 */
export const MAX_KEPT_SKIPPED = 1024;

/** Names noted as maybe holding a portal a Bind made, past which they count as any name. */
export const MAX_BOUND_NAMES = 1024;

/** The `bound` key standing for every name (no name holds NUL). */
const ANY_NAME = '\u0000any';

/** The bytes of a name the server compares (NAMEDATALEN - 1). */
export const NAME_KEY_BYTES = 63;

/**
 * A name as the server keys it: its first 63 bytes when encoded as the server does, or null when
 * the gateway cannot know those bytes. `utf8`: client and server encoding are both UTF8, so the
 * bytes the gateway decoded are the server's.
 */
export function serverKey(name: string, utf8: boolean): string | null {
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(name);
  // U+FFFD: bytes that were not UTF-8 (or the character itself; either way not matched).
  if (!ascii && (!utf8 || name.includes('\ufffd'))) return null;
  if (ascii) return name.length <= NAME_KEY_BYTES ? name : name.slice(0, NAME_KEY_BYTES);
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= NAME_KEY_BYTES) return name;
  const head = bytes.subarray(0, NAME_KEY_BYTES);
  const text = head.toString('utf8');
  // Cut inside a character: no SQL identifier (cut at a character boundary) names it; a NUL
  // prefix keeps the key apart from every name, which cannot hold NUL.
  return Buffer.from(text, 'utf8').equals(head) ? text : `\u0000${head.toString('hex')}`;
}

/** Command tags of statements that end the transaction, and with it every portal. */
const TRANSACTION_END = /^(COMMIT|ROLLBACK|PREPARE TRANSACTION)\b/;

export const describeName = (kind: 'statement' | 'portal', name: string): string => (name === '' ? `the unnamed ${kind}` : `${kind} "${name}"`);

export class StatementRegistry {
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, Portal>();
  private pending: Change[] = [];
  private block = 0;
  /**
   * Names a protocol Bind may have left a live portal under (keys), with the Bind changes not yet
   * answered: a SQL FETCH or MOVE of one runs that portal's statement. A name leaves only when the
   * server confirms the portal gone (CloseComplete, SQL CLOSE, the end of its transaction).
   */
  private readonly bound = new Map<string, Set<Change>>();
  /** client_encoding and server_encoding as the server last reported them. */
  private readonly encodings = new Map<string, string>();

  /** A ParameterStatus from the server (at login and whenever a setting it reports changes). */
  parameterStatus(name: string, value: string): void {
    if (name === 'client_encoding' || name === 'server_encoding') this.encodings.set(name, value);
  }

  /** `name` as the server keys it (see serverKey); null: the gateway cannot match it. */
  private key(name: string): string | null {
    return serverKey(name, this.encodings.get('client_encoding') === 'UTF8' && this.encodings.get('server_encoding') === 'UTF8');
  }

  /** A Sync or a Query message: what comes after it is no longer discarded when what came before fails. */
  nextBlock(): void {
    this.block++;
    this.compact();
  }

  /** A message that will change `name` (null: any name) once the server confirms it. */
  expect(kind: 'statement' | 'portal', name: string | null, to: Statement | Portal | null | undefined): Change {
    const key = name === null ? null : this.key(name);
    // A name the gateway cannot key may be any name of its kind once the server applies it.
    const c: Change = key === null ? { kind, name: null, block: this.block, to: undefined, settled: false } : { kind, name: key, block: this.block, to, settled: false };
    this.pending.push(c);
    if (this.pending.length > MAX_KEPT_SKIPPED) this.collapseSkipped();
    if (kind === 'portal' && to !== null && name !== '') this.noteBind(key ?? ANY_NAME, c);
    return c;
  }

  /** The server confirmed the change (ParseComplete, BindComplete, CloseComplete). */
  confirm(c: Change): void {
    if (c.settled) return;
    if (c.kind === 'portal' && c.to === null && c.name !== null) this.unbind(c.name);
    if (c.name === null || c.to === undefined) this.forget(c.kind, c.name);
    else if (c.to === null) this.map(c.kind).delete(c.name);
    else if (c.kind === 'statement') this.statements.set(c.name, c.to as Statement);
    else this.portals.set(c.name, c.to as Portal);
    this.settle(c);
  }

  /**
   * The server answered without applying the change: it failed it (`failed`) or discarded it.
   * A failed Parse of the unnamed statement has already dropped the previous one.
   */
  drop(c: Change, failed: boolean): void {
    if (c.settled) return;
    if (failed && c.kind === 'statement' && c.name === '' && c.to !== null) this.statements.delete('');
    // A failed message's block is discarded after it, like a skipped one's.
    if (failed) c.skipped = true;
    this.settle(c);
  }

  /** The server discards the change with the rest of its block (see Change.skipped). */
  skip(c: Change): void {
    if (c.settled) return;
    c.skipped = true;
    this.settle(c);
  }

  /**
   * The discarded changes of the current block, past MAX_KEPT_SKIPPED, become one per kind that
   * names any name: the server runs none of the block's messages, and the gateway records them
   * against an unknown statement rather than keep every one.
   */
  private collapseSkipped(): void {
    const skipped = this.pending.filter((c) => c.settled && c.skipped && c.block === this.block);
    if (skipped.length <= MAX_KEPT_SKIPPED / 2) return;
    this.pending = this.pending.filter((c) => !(c.settled && c.skipped && c.block === this.block));
    for (const kind of ['statement', 'portal'] as const) this.pending.push({ kind, name: null, block: this.block, to: undefined, settled: true, skipped: true });
  }

  /**
   * A Bind: its name may hold a live portal from now on (an unkeyable one: any name). SQL cannot
   * name the unnamed portal (an empty identifier is a syntax error), so it is not noted. A name
   * keeps only its unanswered Binds; past MAX_BOUND_NAMES names (a transaction binding without
   * end) they become one entry for any name, so the map stays bounded.
   */
  private noteBind(key: string, c: Change): void {
    const open = this.bound.get(key) ?? new Set<Change>();
    for (const old of open) if (old.settled) open.delete(old);
    open.add(c);
    this.bound.set(key, open);
    if (this.bound.size <= MAX_BOUND_NAMES) return;
    const any = new Set<Change>();
    for (const set of this.bound.values()) for (const x of set) if (!x.settled) any.add(x);
    this.bound.clear();
    this.bound.set(ANY_NAME, any);
  }

  /** The server confirmed every portal of `key` gone (null: every portal). */
  private unbind(key: string | null): void {
    if (key === null) {
      for (const [k, open] of this.bound) this.unbindIfAnswered(k, open);
      return;
    }
    const open = this.bound.get(key);
    if (open) this.unbindIfAnswered(key, open);
  }

  /** Binds still unanswered were sent after what ended the portal: they may still create one. */
  private unbindIfAnswered(key: string, open: Set<Change>): void {
    for (const c of open) if (c.settled) open.delete(c);
    if (open.size === 0) this.bound.delete(key);
  }

  /**
   * Why a SQL FETCH or MOVE of `portal` cannot be recorded as itself: a protocol Bind may have
   * left a portal of that name, and reading it runs the portal's statement. Null when no Bind
   * could have.
   */
  /** Whether any name may hold a portal a Bind made. */
  anyBound(): boolean {
    return this.bound.size > 0;
  }

  fetchHazard(portal: string): string | null {
    const key = this.key(portal);
    if (key !== null && !this.bound.has(key) && !this.bound.has(ANY_NAME)) return null;
    return `FETCH or MOVE of ${describeName('portal', portal)} may run the statement of a portal made by a protocol Bind, which the gateway does not record as this command`;
  }

  private settle(c: Change): void {
    c.settled = true;
    this.compact();
  }

  private compact(): void {
    let n = 0;
    for (const c of this.pending) {
      if (!c.settled || (c.skipped && c.block === this.block)) break;
      n++;
    }
    if (n > 0) this.pending.splice(0, n);
  }

  statement(name: string): Resolved<Statement> {
    return this.resolve('statement', name) as Resolved<Statement>;
  }

  portal(name: string): Resolved<Portal> {
    return this.resolve('portal', name) as Resolved<Portal>;
  }

  private resolve(kind: 'statement' | 'portal', raw: string): Resolved<Statement | Portal> {
    const what = describeName(kind, raw);
    const name = this.key(raw);
    if (name === null) return { unknown: `the server compares ${what} by bytes the gateway cannot know (a name that is not ASCII while client or server encoding is not UTF8, or not valid UTF-8)` };
    return this.resolveKey(kind, name, what);
  }

  private resolveKey(kind: 'statement' | 'portal', name: string, what: string): Resolved<Statement | Portal> {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const c = this.pending[i]!;
      if ((c.settled && !(c.skipped && c.block === this.block)) || c.kind !== kind || (c.name !== null && c.name !== name)) continue;
      if (c.block !== this.block) return { unknown: `${what} is changed by a message before the last Sync that the server has not answered yet, so it may or may not have applied` };
      if (c.to === undefined || c.name === null) return { unknown: `a command the server has not answered yet may change ${what}` };
      if (c.to === null) return { unknown: `${what} is closed by an earlier message` };
      return { known: c.to };
    }
    const known = this.map(kind).get(name);
    return known ? { known } : { unknown: `the server never confirmed ${what} to the gateway (not created, closed, deallocated, or created in a way the gateway cannot follow)` };
  }

  /**
   * The statements an `EXECUTE name` in `text` may run, by name, for the classifier: only those
   * resolved and classified (built only when the text can hold an EXECUTE at all).
   */
  preparedClasses(text: string): PreparedClasses {
    const out: PreparedClasses = new Map();
    if (!/execute/i.test(text)) return out;
    const names = new Set<string>(this.statements.keys());
    for (const c of this.pending) if (c.kind === 'statement' && c.name !== null) names.add(c.name);
    for (const name of names) {
      // A key cut inside a character is named by no SQL identifier.
      if (name === '' || name.startsWith('\u0000')) continue;
      const r = this.resolveKey('statement', name, describeName('statement', name)) as Resolved<Statement>;
      if ('known' in r && r.known.prepared) out.set(name, r.known.prepared);
    }
    return out;
  }

  /**
   * A CommandComplete of a command that ran `effect`: the server confirmed what the tag says. A
   * tag that changes names the gateway did not expect (an EXECUTE of a statement that
   * deallocates, a statement it could not parse) makes it forget every name of that kind.
   */
  completed(effect: Effect | undefined, tag: string): void {
    const e = effect ?? { kind: 'none' };
    if (TRANSACTION_END.test(tag)) this.portals.clear();
    switch (tag) {
      case 'PREPARE': {
        const key = e.kind === 'prepare' ? this.key(e.name) : null;
        if (e.kind === 'prepare' && key !== null) this.statements.set(key, e.statement);
        else this.forget('statement', null);
        return;
      }
      case 'DEALLOCATE': {
        const key = e.kind === 'deallocate' && e.name !== null ? this.key(e.name) : null;
        if (key !== null) this.statements.delete(key);
        else this.forget('statement', null);
        return;
      }
      case 'DEALLOCATE ALL':
        this.forget('statement', null);
        return;
      case 'DISCARD ALL':
        this.statements.clear();
        this.portals.clear();
        this.unbind(null);
        return;
      case 'CLOSE CURSOR': {
        const key = e.kind === 'close-cursor' && e.name !== null ? this.key(e.name) : null;
        if (key !== null) {
          this.portals.delete(key);
          this.unbind(key);
        } else this.portals.clear();
        return;
      }
      case 'DO':
        // A DO block's dynamic SQL can DEALLOCATE and PREPARE (or CLOSE and OPEN) any name.
        this.forget('statement', null);
        this.portals.clear();
        return;
      case 'CLOSE CURSOR ALL':
        this.portals.clear();
        this.unbind(null);
        return;
      case 'DECLARE CURSOR':
        // A cursor is a portal the gateway does not follow: its name is unknown from now on.
        this.portals.clear();
        return;
      default:
    }
  }

  /** An error or the end of the transaction: no portal of the transaction can run any more. */
  endPortals(): void {
    // Every ReadyForQuery outside a transaction calls this; most have no portal to forget.
    if (this.portals.size > 0) this.portals.clear();
  }

  /**
   * ReadyForQuery outside any transaction: every portal a Bind answered so far is gone. (Not at
   * COMMIT/ROLLBACK tags or errors: ROLLBACK TO SAVEPOINT has the tag ROLLBACK and keeps the
   * portals made before the savepoint.)
   */
  transactionIdle(): void {
    this.unbind(null);
  }

  /** Every named statement, and with `name` null every name of the kind, is unknown from now on. */
  private forget(kind: 'statement' | 'portal', name: string | null): void {
    const m = this.map(kind);
    if (name !== null) m.delete(name);
    else if (kind === 'portal') m.clear();
    else for (const k of [...m.keys()]) if (k !== '') m.delete(k);
  }

  private map(kind: 'statement' | 'portal'): Map<string, Statement | Portal> {
    return kind === 'statement' ? this.statements : this.portals;
  }
}
