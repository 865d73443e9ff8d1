// Text from a session log or a client (SQL, parameters, error messages, rule reasons, identity
// claims) printed to a terminal. Such text is written by whoever ran the commands, and a
// terminal obeys what it prints: ESC sequences move the cursor, recolour or retitle; a CR
// overwrites the line; bidi overrides reorder what the eye reads. An approver must see the text
// the gateway holds, not what it pretends to be, so every printer of the CLI renders foreign
// text through this one function: each control and format character is shown escaped.

/**
 * Characters a terminal may act on or draw invisibly: C0 and C1 controls and DEL (Cc), format
 * characters (Cf: bidi embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, the
 * zero-width U+200B-U+200F, U+2060-U+2064, U+FEFF, tags), the line and paragraph separators
 * U+2028/U+2029 (Zl, Zp), and surrogates left unpaired (Cs).
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const UNSAFE_BUT_NEWLINE_TAB = /[^\n\t\P{Cc}]|[\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0)!;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/**
 * `text` safe to print on one line: every control and format character escaped (`\x1b`, `\r`,
 * `\n`, `\t`, `\u202e`, ...). Backslashes are left alone: an escape that was typed is as inert
 * as one written here, and SQL is full of them.
 */
export function terminalText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * Multi-line `text` (SQL) safe to print: newlines and tabs are kept, every other control and
 * format character is escaped (a CR too, so nothing overwrites a line), and each line after the
 * first starts with `continuation`, so a line inside the text can never pass for a line of the
 * gateway's own output.
 */
export function terminalLines(text: string, continuation: string): string {
  return text.replace(UNSAFE_BUT_NEWLINE_TAB, escapeChar).split('\n').join(`\n${continuation}`);
}

/**
 * `text` on one line of at most `max` characters: runs of spaces, tabs and newlines become one
 * space, everything else unsafe is escaped, and a longer result is cut with an ellipsis.
 */
export function terminalOneLine(text: string, max: number): string {
  const t = [...terminalText(text.replace(/[ \t\n]+/g, ' ').trim())];
  return t.length <= max ? t.join('') : `${t.slice(0, max - 1).join('')}…`;
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls, format
 * characters and U+2028/U+2029 raw; they are written as \u escapes here (the same JSON value).
 */
export function terminalJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(/[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu, (ch) => {
    const cp = ch.codePointAt(0)!;
    if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`;
    // A format character beyond the BMP (tags): as its surrogate pair.
    return [...ch.split('')].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
  });
}
