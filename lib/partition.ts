/**
 * Partitioning. A change is keyed by its merchant; a merchant in the hot set is keyed `merchant#shard`
 * (shard = hash(row id) mod K) so its traffic spreads over partitions. We choose the partition ourselves
 * (FNV-1a of the key mod N) instead of relying on the client's partitioner, so cdc, aggregator and readers agree.
 *
 * Bucket deltas commute, so a merchant's state may be split over any partitions; readers merge over
 * `candidatePartitions(merchant)`, the partitions of `merchant` and of every `merchant#s`. Hot-set changes
 * therefore never break exact counting. (A fact that lands outside its merchant's candidates — an UPDATE that
 * moves a row to another merchant — is recorded by the aggregator in that partition's "foreign" index.)
 */

/** 32-bit FNV-1a over the UTF-16 code units (keys are ASCII merchant ids). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function partitionOfKey(key: string, partitions: number): number {
  return fnv1a(key) % partitions;
}

export function messageKey(merchantId: string, hot: boolean, rowId: string, shards: number): string {
  return hot && shards > 1 ? `${merchantId}#${fnv1a(rowId) % shards}` : merchantId;
}

export function candidatePartitions(merchantId: string, partitions: number, shards: number): number[] {
  const set = new Set<number>([partitionOfKey(merchantId, partitions)]);
  if (shards > 1) for (let s = 0; s < shards; s++) set.add(partitionOfKey(`${merchantId}#${s}`, partitions));
  return [...set].sort((a, b) => a - b);
}
