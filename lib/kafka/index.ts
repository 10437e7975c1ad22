/**
 * Kafka access, the public face: client construction from config, reading a partition at an offset, writing
 * explicit partitions with our own record-batch encoding (an idempotent producer, producer.ts), and locating a source LSN in the retained topic.
 * Components import Kafka helpers from here only.
 */
export { createKafka, kafkaConfigOf, kafkaSecurity, kafkaSetupProblem, KafkaSetupError, verifyKafka, type KafkaClientOptions, type KafkaConfig } from './client.ts';
export { TopicReader, type FetchedMessage } from './direct.ts';
export { PartitionWriter, ProduceFailedError, type PartitionBatch, type PartitionWriterOptions } from './producer.ts';
export { recordSetOf, recordValue, type RecordSet } from './record-batch.ts';
export { locateLsn, LsnInFutureError, LsnTooOldError, type LsnLocation } from './locate.ts';
export { createTopics, durabilityOf, durabilityWarnings, retryTransient, TopicSetupError, type Durability } from './topics.ts';
export type { Kafka } from 'kafkajs';
export { OffsetOutOfRangeError, PartitionFetcher, type FetchedRecord, type PartitionFetch } from './fetcher.ts';
