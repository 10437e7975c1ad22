import { describe, expect, it } from 'vitest';
import { KafkaCode, nextSequence, produceOutcome, retryDelayMs } from './producer.ts';

describe('produceOutcome', () => {
  it('acknowledges success and a duplicate (the log already holds the batch)', () => {
    for (const earlier of [false, true]) {
      expect(produceOutcome(KafkaCode.NONE, earlier)).toBe('acked');
      expect(produceOutcome(KafkaCode.DUPLICATE_SEQUENCE_NUMBER, earlier)).toBe('acked');
    }
  });

  it('retries leader changes, lost replicas, timeouts and transport failures', () => {
    for (const code of [null, KafkaCode.NOT_LEADER_OR_FOLLOWER, KafkaCode.LEADER_NOT_AVAILABLE, KafkaCode.NOT_ENOUGH_REPLICAS,
      KafkaCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaCode.REQUEST_TIMED_OUT, KafkaCode.NETWORK_EXCEPTION, KafkaCode.UNKNOWN_TOPIC_OR_PARTITION]) {
      expect(produceOutcome(code, false), String(code)).toBe('retry');
    }
  });

  it('retries OUT_OF_ORDER_SEQUENCE_NUMBER only behind an unacknowledged earlier batch; on the first one the log lost data', () => {
    expect(produceOutcome(KafkaCode.OUT_OF_ORDER_SEQUENCE_NUMBER, true)).toBe('retry');
    expect(produceOutcome(KafkaCode.OUT_OF_ORDER_SEQUENCE_NUMBER, false)).toBe('fatal');
  });

  it('stops on a fenced or unknown producer and on a refused batch', () => {
    for (const code of [KafkaCode.INVALID_PRODUCER_EPOCH, KafkaCode.PRODUCER_FENCED, KafkaCode.UNKNOWN_PRODUCER_ID, 10 /* MESSAGE_TOO_LARGE */, 2 /* CORRUPT_MESSAGE */, 29]) {
      expect(produceOutcome(code, true), String(code)).toBe('fatal');
    }
  });
});

describe('nextSequence', () => {
  it('adds the record count and wraps past 2^31 − 1 to 0 as the broker does', () => {
    expect(nextSequence(0, 5)).toBe(5);
    expect(nextSequence(2_147_483_640, 7)).toBe(2_147_483_647);
    expect(nextSequence(2_147_483_640, 8)).toBe(0);
    expect(nextSequence(2_147_483_647, 1)).toBe(0);
    expect(nextSequence(2_147_483_645, 10)).toBe(7);
  });
});

describe('retryDelayMs', () => {
  it('starts at 50 ms and doubles up to 1 s', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map(retryDelayMs)).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
  });
});
