// Log content in HTML: every string a log holds is attacker-controlled, so it is escaped for
// element content and quoted attribute values alike, and only web links become links.

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML-escapes text for element content and quoted attribute values alike. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (ch) => ESC[ch]!);
}

/** Only http(s) links are made from log content (a javascript: URL stays text). */
export const safeUrl = (u: string | null): string | null => (u && /^https?:\/\//i.test(u) ? u : null);
