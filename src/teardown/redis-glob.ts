/** Escapes Redis glob specials so the token matches only itself (the guard already forbids them). */
export function escapeRedisGlob(text: string): string {
  return text.replace(/[\\*?[\]^]/g, (c) => `\\${c}`);
}
