import Redis from 'ioredis';
import { TEST_REDIS_URL } from './env';

export function testRedis(): Redis {
  return new Redis(TEST_REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });
}

export async function keysMatching(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

export async function aclUserExists(redis: Redis, user: string): Promise<boolean> {
  const users = (await redis.call('ACL', 'USERS')) as string[];
  return users.includes(user);
}
