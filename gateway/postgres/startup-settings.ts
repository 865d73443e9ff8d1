// Startup parameters as the server variables they set, so policy can decide them as the SET
// statements they amount to.

/** Startup parameters that identify the session or only shape the client's own view. */
const PLAIN_STARTUP_PARAMS = new Set(['user', 'database', 'application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'extra_float_digits', 'IntervalStyle', 'fallback_application_name']);

/**
 * The server variables startup parameters set: every parameter but the plain ones, with
 * `options` split into its `-c name=value` / `--name=value` settings (backslash escapes the
 * next character, as libpq writes them). Anything else in `options` is kept whole, under the
 * name `options`, so it cannot pass for a harmless setting.
 */
export function startupSettings(params: Map<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of params) {
    if (PLAIN_STARTUP_PARAMS.has(k)) continue;
    if (k !== 'options') {
      out.push([k, v]);
      continue;
    }
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    for (let i = 0; i < v.length; i++) {
      const c = v[i]!;
      if (c === '\\' && i + 1 < v.length) {
        cur += v[++i];
        inWord = true;
      } else if (/\s/.test(c)) {
        if (inWord) words.push(cur);
        cur = '';
        inWord = false;
      } else {
        cur += c;
        inWord = true;
      }
    }
    if (inWord) words.push(cur);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      const setting = w === '-c' ? words[++i] : w.startsWith('-c') ? w.slice(2) : w.startsWith('--') ? w.slice(2) : undefined;
      const eq = setting?.indexOf('=') ?? -1;
      if (setting === undefined || eq <= 0) out.push(['options', w]);
      else out.push([setting.slice(0, eq).replaceAll('-', '_'), setting.slice(eq + 1)]);
    }
  }
  return out;
}

export const quoteIdent = (s: string): string => `"${s.replaceAll('"', '""')}"`;
export const quoteLiteral = (s: string): string => `'${s.replaceAll("'", "''")}'`;
