/**
 * How the platform writes a binding: `provider_resource_id` gets a `;`-separated segment
 * `pooltok:<pool_token>` (e.g. `local:0;pooltok:pool-<uuid>`). A segment counts when, once
 * trimmed of spaces, tabs, CR and LF, it starts with `pooltok:` in any letter case and has at
 * least one character after it: the same rule as BINDINGS_SQL (string_to_array on `;`,
 * btrim(E' \t\r\n'), lower(...) LIKE 'pooltok:_%'). Whole segments only: `xpooltok:a`,
 * `pooltok:a:1` for token `a`, or `,` as a separator never bind `a`.
 */

const PREFIX = 'pooltok:';
const EDGE_WHITESPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/**
 * The tokens a provider_resource_id binds, as written after `pooltok:` (not lower-cased:
 * the caller compares them with lower() in the same database as the pool tokens, so both
 * sides are folded by the same rules).
 */
export function boundTokensOf(providerResourceId: string | null | undefined): string[] {
  if (typeof providerResourceId !== 'string' || !/pooltok:/i.test(providerResourceId)) return [];
  const tokens: string[] = [];
  for (const raw of providerResourceId.split(';')) {
    const segment = raw.replace(EDGE_WHITESPACE, '');
    if (segment.length > PREFIX.length && segment.slice(0, PREFIX.length).toLowerCase() === PREFIX) {
      tokens.push(segment.slice(PREFIX.length));
    }
  }
  return tokens;
}
