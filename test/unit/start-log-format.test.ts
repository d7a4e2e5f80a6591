import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { logFormatFor, prettyLogStream } from '../../src/dev/log-format';
import { createLogger } from '../../src/logger';

/** Collects what the prettifier writes. */
function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('npm start log format', () => {
  it('is readable on a terminal and JSON otherwise', () => {
    expect(logFormatFor({ isTTY: true })).toBe('pretty');
    expect(logFormatFor({ isTTY: false })).toBe('json');
    // A pipe or a file: process.stdout.isTTY is undefined there.
    expect(logFormatFor({})).toBe('json');
  });

  it('keeps every field of an audit line visible when prettified', async () => {
    const out = sink();
    const pretty = prettyLogStream(out.stream);
    const log = createLogger({ name: 'pool-reaper' }, pretty);
    log.warn(
      {
        event: 'provisioner.drop',
        action: 'drop_database',
        object: 'database db_pool-abc',
        cluster: 'pg-eu-1',
        pool_token: 'pool-abc',
        resource_type: 'RESOURCE_TYPE_POSTGRES',
        connection_url: 'postgres://u:secret@h/db',
      },
      'provisioner.drop',
    );
    log.info('not an audit line');
    await new Promise((resolve) => setImmediate(resolve));
    const text = out.text();
    // Not JSON: a time, the level and the message on one line, then the fields.
    expect(text).not.toMatch(/^\{/);
    expect(text).toMatch(/WARN: provisioner\.drop\n/);
    for (const value of [
      'service: "pool-reaper"',
      'drop_database',
      'database db_pool-abc',
      'pg-eu-1',
      'pool-abc',
      'RESOURCE_TYPE_POSTGRES',
    ]) {
      expect(text).toContain(value);
    }
    // Redaction happens before the prettifier sees the line.
    expect(text).not.toContain('secret');
    expect(text).toContain('[redacted]');
    expect(text).toMatch(/INFO: not an audit line/);
  });

  it('passes lines that are not JSON through unchanged', async () => {
    const out = sink();
    const pretty = prettyLogStream(out.stream);
    pretty.write('plain text from a child\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text()).toContain('plain text from a child');
  });
});
