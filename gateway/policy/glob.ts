// The one glob implementation of the project, on wildcard-match. Two flavours:
// - names (targets, tables, refs, actors, environments): `*` matches any run of characters,
//   `/` and `.` included, as the policy has always documented (`refs/heads/*` covers
//   `refs/heads/a/b`); every other character is literal;
// - paths (remote file paths, URL paths): segment-aware, `*` and `?` stay inside one `/`
//   segment and `**` crosses segments.
// Both are whole-string matches. picomatch was tried first: even with `dot: true` its `*`
// never matches a `.` or `..` segment, so a deny rule `tables: ['*']` would miss a table named
// `x/..`; a name glob must not know about paths at all.
import wildcardMatch from 'wildcard-match';

export type Glob = (value: string) => boolean;

/**
 * A name glob: `*` is any run of characters (separators and line breaks included: a name may
 * hold any character); all else is literal, compared exactly or, with `ignoreCase`, without case.
 */
export function nameGlob(pattern: string, opts: { ignoreCase?: boolean } = {}): Glob {
  const compiled = wildcardMatch(pattern.replace(/[\\?]/g, '\\$&'), { separator: false }).regexp;
  const re = new RegExp(compiled.source, `s${opts.ignoreCase ? 'i' : ''}`);
  return (value) => re.test(value);
}

/** A path glob: `*` and `?` within one `/` segment, `**` across segments. */
export function pathGlob(pattern: string): Glob {
  const match = wildcardMatch(pattern.replace(/\\/g, '\\\\'), { separator: '/' });
  return (value) => match(value);
}

/** Whether any of the globs matches (a plain loop: rules test globs on every command). */
export function anyGlob(globs: readonly Glob[], value: string): boolean {
  for (let i = 0; i < globs.length; i++) if (globs[i]!(value)) return true;
  return false;
}

/** Whether a name pattern uses its wildcard (a plain name can be checked against what exists). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*');
}
