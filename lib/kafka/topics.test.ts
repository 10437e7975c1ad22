import { describe, expect, it } from 'vitest';
import { durabilityWarnings } from './topics.ts';

describe('durabilityWarnings', () => {
  it('warns on RF ≥ 3 with min.insync.replicas < 2, and on RF 1 with several brokers; production settings are quiet', () => {
    expect(durabilityWarnings('t', { replicationFactor: 3, minInsyncReplicas: 2, brokers: 3 })).toEqual([]);
    expect(durabilityWarnings('t', { replicationFactor: 3, minInsyncReplicas: 1, brokers: 3 })[0]).toMatch(/min.insync.replicas=1.*min.insync.replicas=2/);
    expect(durabilityWarnings('t', { replicationFactor: 1, minInsyncReplicas: 1, brokers: 3 })[0]).toMatch(/replication factor 1 on a cluster of 3 brokers.*RISKMON_TOPIC_REPLICATION=3/);
    expect(durabilityWarnings('t', { replicationFactor: 1, minInsyncReplicas: 1, brokers: 1 })).toEqual([]); // one machine: nothing to do about it
    expect(durabilityWarnings('t', { replicationFactor: 2, minInsyncReplicas: 1, brokers: 3 })).toEqual([]);
  });
});
