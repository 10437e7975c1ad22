/**
 * The one harness shared by the integration tests, the demo, the soak and the benchmarks: start a component
 * (`spawnRiskmon`), wait for a condition or an exit (`waitFor`, `waitExit`), replication slots (`streaming`,
 * `dropSlot`), a fake Slack webhook (`FakeSlack`), a receiver of signed webhooks (`WebhookReceiver`) and a settlement system of receiver plus deliverer (`startSettlement`), and a run's own names on shared services (`runEnv`, `dropKeys`). Services (PostgreSQL, Kafka, Redis) come from
 * test/harness/services.ts (tests) or scripts/stack/index.ts (tools).
 */
export { FakeSlack, type FakeResponse, type Received } from './fake-slack.ts';
export { dropKeys, runEnv } from './names.ts';
export { dropInactiveSlots, dropSlot, streaming } from './slots.ts';
export { ROOT, runRiskmon, spawnRiskmon, type SpawnOptions } from './spawn.ts';
export { sleep, stopChild, waitExit, waitFor } from './wait.ts';
export { WebhookReceiver, type WebhookAnswer, type WebhookRequest } from './webhook-receiver.ts';
export { SETTLEMENT_SECRET, startSettlement, type Settlement } from './settlement.ts';
