// What statements do to prepared-statement and portal names (PREPARE, DEALLOCATE, DISCARD ALL,
// CLOSE, FETCH/MOVE), read with the real parser for the statement registry.
import { loadedParser } from './pg-parser.ts';

type Node = Record<string, unknown>;

/** What one statement of a text does to prepared-statement and portal names, when it succeeds. */
export type NamespaceEffect =
  | { kind: 'prepare'; name: string; text: string }
  | { kind: 'deallocate'; name: string | null }
  | { kind: 'discard-all' }
  | { kind: 'close-cursor'; name: string | null }
  | { kind: 'none' };

/** Words without which a text cannot prepare, deallocate, discard or close anything by name. */
const NAMESPACE_WORDS = /prepare|deallocate|discard|close/i;

/**
 * Per top-level statement of `text`, in order (the server answers one CommandComplete each):
 * what it does to names. Null when the parser is not loaded or rejects the text.
 */
export function namespaceEffects(text: string): NamespaceEffect[] | null {
  const pgQuery = loadedParser();
  if (!pgQuery) return null;
  let tree: { stmts?: { stmt?: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = pgQuery.parseSync(text) as typeof tree;
  } catch {
    return null;
  }
  const bytes = Buffer.from(text, 'utf8');
  return (tree.stmts ?? []).map((raw): NamespaceEffect => {
    const st = (raw.stmt ?? {}) as Record<string, Node | undefined>;
    if (st.PrepareStmt) {
      const start = raw.stmt_location ?? 0;
      const own = (raw.stmt_len ? bytes.subarray(start, start + raw.stmt_len) : bytes.subarray(start)).toString('utf8').trim();
      return { kind: 'prepare', name: String(st.PrepareStmt.name ?? ''), text: own };
    }
    if (st.DeallocateStmt) return { kind: 'deallocate', name: st.DeallocateStmt.isall || typeof st.DeallocateStmt.name !== 'string' ? null : st.DeallocateStmt.name };
    if (st.DiscardStmt?.target === 'DISCARD_ALL') return { kind: 'discard-all' };
    if (st.ClosePortalStmt) return { kind: 'close-cursor', name: typeof st.ClosePortalStmt.portalname === 'string' ? st.ClosePortalStmt.portalname : null };
    return { kind: 'none' };
  });
}

/**
 * The portals a text's FETCH and MOVE statements read, by name; null when the text cannot be
 * parsed. A FETCH or MOVE of a portal made by a protocol Bind runs that portal's statement
 * (PortalRunFetch fills the portal's store), which no command record would otherwise name.
 */
export function fetchedPortals(text: string): string[] | null {
  if (!/fetch|move/i.test(text)) return [];
  const pgQuery = loadedParser();
  if (!pgQuery) return null;
  let tree: { stmts?: { stmt?: Node }[] };
  try {
    tree = pgQuery.parseSync(text) as typeof tree;
  } catch {
    return null;
  }
  const names: string[] = [];
  for (const raw of tree.stmts ?? []) {
    const f = ((raw.stmt ?? {}) as Record<string, Node | undefined>).FetchStmt;
    if (f) names.push(typeof f.portalname === 'string' ? f.portalname : '');
  }
  return names;
}

/** Whether the text can change names at all (a cheap test before namespaceEffects). */
export function mayChangeNames(text: string): boolean {
  return NAMESPACE_WORDS.test(text);
}
