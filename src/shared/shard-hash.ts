/**
 * The shard rule, in SQL and in TypeScript. A (type, cluster) key maps to shard
 * `first 32 bits of md5("type/cluster") mod count`: stable across processes, releases and
 * Postgres versions, and every item of one cluster lands in one shard, so per-cluster lanes and
 * breakers keep working. The listing computes it in SQL (shardSql); a test holds both to the
 * same answers. Pure (src/shared): its own small MD5 over UTF-8, no Node APIs.
 */
import { clusterKey } from './clusters';

/** The shard of a (type, cluster) among `count` shards. */
export function shardOf(resourceType: string, cluster: string, count: number): number {
  return md5First32(utf8(clusterKey(resourceType, cluster))) % count;
}

/**
 * The same rule as a SQL expression over a resource type and a cluster expression (both text);
 * `count` is the SQL of the shard count (a bind parameter). `clusterKey` joins with `/`.
 */
export function shardSql(typeExpr: string, clusterExpr: string, count: string): string {
  return `((('x' || substr(md5(${typeExpr} || '/' || ${clusterExpr}), 1, 8))::bit(32)::bigint) % (${count})::bigint)`;
}

/** UTF-8 bytes of a string (lone surrogates as U+FFFD, as Postgres would never store them). */
function utf8(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    let c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

/** RFC 1321 MD5; returns the digest's first four bytes as an unsigned big-endian integer. */
function md5First32(bytes: readonly number[]): number {
  const bitLength = bytes.length * 8;
  const msg = [...bytes, 0x80];
  while (msg.length % 64 !== 56) msg.push(0);
  for (let i = 0; i < 8; i++) msg.push(i < 4 ? (bitLength >>> (8 * i)) & 0xff : 0);
  let a0 = 0x67452301;
  let b0 = 0xefcdab89;
  let c0 = 0x98badcfe;
  let d0 = 0x10325476;
  for (let off = 0; off < msg.length; off += 64) {
    const m = Array.from(
      { length: 16 },
      (_, j) =>
        (msg[off + 4 * j]! |
          (msg[off + 4 * j + 1]! << 8) |
          (msg[off + 4 * j + 2]! << 16) |
          (msg[off + 4 * j + 3]! << 24)) >>>
        0,
    );
    let [a, b, c, d] = [a0, b0, c0, d0];
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) [f, g] = [(b & c) | (~b & d), i];
      else if (i < 32) [f, g] = [(d & b) | (~d & c), (5 * i + 1) % 16];
      else if (i < 48) [f, g] = [b ^ c ^ d, (3 * i + 5) % 16];
      else [f, g] = [c ^ (b | ~d), (7 * i) % 16];
      const sum = (a + f + K[i]! + m[g]!) >>> 0;
      const s = S[(i >> 4) * 4 + (i % 4)]!;
      [a, d, c] = [d, c, b];
      b = (b + ((sum << s) | (sum >>> (32 - s)))) >>> 0;
    }
    a0 = (a0 + a) >>> 0;
    b0 = (b0 + b) >>> 0;
    c0 = (c0 + c) >>> 0;
    d0 = (d0 + d) >>> 0;
  }
  // The digest is a0's bytes little-endian first: its first 32 bits big-endian are a0 byte-swapped.
  return (
    (((a0 & 0xff) << 24) | (((a0 >>> 8) & 0xff) << 16) | (((a0 >>> 16) & 0xff) << 8) | (a0 >>> 24)) >>> 0
  );
}
