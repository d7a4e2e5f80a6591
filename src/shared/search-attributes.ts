import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes the reaper writes, so "which pass tore down pool token X?" is one
 * visibility query: `temporal workflow list --query "ReapedPoolTokens = 'pool-...'"`, and
 * "which passes did something?" another: `ReapedCount > 0` or `ReapOutcome = 'errors'`.
 * Shared by the workflow sandbox, the worker and the dev-server launcher.
 */
export const REAPED_POOL_TOKENS = 'ReapedPoolTokens';
export const REAPED_POOL_TOKENS_KEY = defineSearchAttributeKey(REAPED_POOL_TOKENS, 'KEYWORD_LIST');

/** What a pass did, set when it ends: see PASS_OUTCOMES. */
export const REAP_OUTCOME = 'ReapOutcome';
export const REAP_OUTCOME_KEY = defineSearchAttributeKey(REAP_OUTCOME, 'KEYWORD');

/** Rows a pass deleted after confirming their infra freed (0 on empty and dry-run passes). */
export const REAPED_COUNT = 'ReapedCount';
export const REAPED_COUNT_KEY = defineSearchAttributeKey(REAPED_COUNT, 'INT');

/**
 * The values of ReapOutcome, first match wins: `dry_run` (REAPER_DRY_RUN: nothing touched),
 * `errors` (a deprovision or delete error, or the listing never answered), `reaped` (at least
 * one row deleted), `refused` (the guard or a type/cluster check refused an item), `empty`
 * (nothing done: nothing listed, or every listed item skipped or deferred).
 */
export const PASS_OUTCOMES = ['dry_run', 'errors', 'reaped', 'refused', 'empty'] as const;
export type PassOutcome = (typeof PASS_OUTCOMES)[number];

/** Names and types as `temporal server start-dev --search-attribute` and the operator API spell them. */
export const SEARCH_ATTRIBUTE_TYPES = {
  [REAPED_POOL_TOKENS]: 'KeywordList',
  [REAP_OUTCOME]: 'Keyword',
  [REAPED_COUNT]: 'Int',
} as const;

/** The attributes a pass's outcome needs; a namespace without them gets passes without them. */
export const PASS_OUTCOME_ATTRIBUTES: readonly string[] = [REAP_OUTCOME, REAPED_COUNT];
