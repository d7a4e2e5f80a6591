import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes the reaper writes, so "which pass tore down pool token X?" is one
 * visibility query: `temporal workflow list --query "ReapedPoolTokens = 'pool-...'"`.
 * Shared by the workflow sandbox, the worker and the dev-server launcher.
 */
export const REAPED_POOL_TOKENS = 'ReapedPoolTokens';
export const REAPED_POOL_TOKENS_KEY = defineSearchAttributeKey(REAPED_POOL_TOKENS, 'KEYWORD_LIST');

/** Names and types as `temporal server start-dev --search-attribute` and the operator API spell them. */
export const SEARCH_ATTRIBUTE_TYPES = {
  [REAPED_POOL_TOKENS]: 'KeywordList',
} as const;
