/** Which CA shard serves an agent: FNV-1a of its key (the join token) modulo the shard count. Used by the meter worker and the driver alike. */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h % shards;
}
