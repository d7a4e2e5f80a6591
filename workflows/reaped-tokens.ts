import { executeChild, upsertSearchAttributes } from '@temporalio/workflow';
import { REAPED_POOL_TOKENS_KEY } from '../src/shared/search-attributes';

/**
 * Temporal caps one search attribute value at 2 KiB (`limit.searchAttributesSizeOfValueLimit`,
 * the default on self-hosted clusters and Temporal Cloud alike); a list over it fails the
 * workflow task, so each list stays well under.
 */
const TOKEN_LIST_BUDGET_BYTES = 1800;

/** UTF-8 length without relying on TextEncoder inside the workflow sandbox. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** Splits tokens, in order, into lists whose JSON encoding fits one search attribute value. */
export function tokenChunks(tokens: readonly string[]): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 2; // []
  for (const token of tokens) {
    const size = utf8Length(JSON.stringify(token)) + 1; // the comma
    if (current.length > 0 && bytes + size > TOKEN_LIST_BUDGET_BYTES) {
      chunks.push(current);
      current = [];
      bytes = 2;
    }
    current.push(token);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export interface ReapedTokensIndexInput {
  readonly passId: string;
  readonly part: number;
  readonly parts: number;
}

/**
 * Carries one more ReapedPoolTokens list for a pass that reaped more tokens than one
 * attribute value holds. It does nothing: its search attribute, set when the pass starts it,
 * is the point, and its id (`<pass id>-tokens-<n>`) names the pass.
 */
export async function reapedTokensIndex(_input: ReapedTokensIndexInput): Promise<void> {}

/**
 * Makes every token the pass reaped findable with `ReapedPoolTokens = '<token>'`: the first
 * list on the pass itself, any further lists on small child workflows.
 */
export async function recordReapedTokens(passId: string, tokens: readonly string[]): Promise<void> {
  const chunks = tokenChunks(tokens);
  const [first, ...rest] = chunks;
  if (!first) return;
  upsertSearchAttributes([{ key: REAPED_POOL_TOKENS_KEY, value: first }]);
  await Promise.all(
    rest.map((chunk, index) =>
      executeChild(reapedTokensIndex, {
        workflowId: `${passId}-tokens-${index + 2}`,
        args: [{ passId, part: index + 2, parts: chunks.length }],
        typedSearchAttributes: [{ key: REAPED_POOL_TOKENS_KEY, value: chunk }],
        staticSummary: `reaped pool tokens, part ${index + 2}/${chunks.length} of ${passId}`,
      }),
    ),
  );
}
