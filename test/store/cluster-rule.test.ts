import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clusterOf } from '../../src/shared/clusters';
import { CLUSTER_SQL } from '../../src/store/predicates';
import { adminQuery } from '../helpers/postgres';

/**
 * The listing (SQL) and the teardown and pass (JavaScript) must name the same cluster for
 * every provider_resource_id, or a cluster's circuit and lanes would not cover its items.
 */
async function sqlClusters(values: readonly string[]): Promise<string[]> {
  const { rows } = await adminQuery<{ cluster: string }>(
    `SELECT ${CLUSTER_SQL} AS cluster
       FROM unnest($1::text[]) WITH ORDINALITY AS p(provider_resource_id, n) ORDER BY n`,
    [values],
  );
  return rows.map((r) => r.cluster);
}

const ADVERSARIAL = [
  '',
  ' ',
  'local:0',
  'local:1;pooltok:pool-x',
  ' local:2 ;x',
  '\tlocal:3\r\n',
  ';local:4',
  'local:5;',
  ';;',
  '\u00a0local:6\u00a0',
  '\u000blocal:7',
  'pooltok:pool-x',
  'local:8 local:9',
  '  \n  ',
  'ünïcode;local:1',
];

describe('the cluster rule', () => {
  it('names the same cluster in SQL and in JavaScript for adversarial inputs', async () => {
    expect(await sqlClusters(ADVERSARIAL)).toEqual(ADVERSARIAL.map(clusterOf));
  });

  it('names the same cluster in SQL and in JavaScript for arbitrary strings', async () => {
    // Postgres text cannot hold NUL; every other code point is fair game.
    const text = fc
      .string({ unit: 'grapheme', maxLength: 30 })
      .map((s) => s.split(String.fromCharCode(0)).join(''));
    const segmented = fc.array(fc.oneof(text, fc.constantFrom(' ', '\t', ';', 'local:1', '\r\n')), {
      maxLength: 6,
    });
    const values = fc.sample(
      fc.oneof(
        text,
        segmented.map((parts) => parts.join('')),
      ),
      2000,
    );
    expect(await sqlClusters(values)).toEqual(values.map(clusterOf));
  });
});
