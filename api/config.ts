/** Options of the api component (composed with the shared connection and common specs). */
import { apiKeys, commonSpec, connections, int, mappingOption, optStr, secret, settlementDaysOption } from '../lib/config.ts';

export const apiOptions = {
  httpPort: int('RISKMON_HTTP_PORT', 'port of the REST API, WebSocket and dashboard', 8080, 0, 65535),
  httpHost: optStr('RISKMON_HTTP_HOST', 'address to listen on (default 0.0.0.0)'),
  apiKeys: secret(apiKeys('RISKMON_API_KEYS', 'API keys: key:role or key:role:name, role viewer, analyst or admin; the name is the actor recorded for the key')),
  corsOrigins: optStr('RISKMON_CORS_ORIGINS', 'comma-separated origins allowed by CORS; unset: CORS off'),
  bodyLimit: int('RISKMON_HTTP_BODY_LIMIT', 'largest request body in bytes', 65_536, 1024, 10_485_760),
  rateLimitMax: int('RISKMON_RATE_LIMIT_MAX', 'requests per key (or address) per rate-limit window; 0 turns it off', 1200, 0, 10_000_000),
  rateLimitWindowMs: int('RISKMON_RATE_LIMIT_WINDOW_MS', 'rate-limit window in ms', 60_000, 1000, 3_600_000),
  trustProxy: optStr('RISKMON_TRUST_PROXY', 'behind a reverse proxy: the proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, as true (any), a hop count, or comma-separated addresses/CIDRs; unset: the socket\'s address is the client (per-address limits then count the proxy)'),
  keyIdSecret: secret(optStr('RISKMON_KEY_ID_SECRET', 'secret keying the HMAC that names a key without its own name (`key <id>` in the audit trail); unset: derived from all configured keys, so ids change when a key is added or removed')),
  authFailMax: int('RISKMON_AUTH_FAIL_MAX', 'failed authentications per client address per window before that address gets 429 on every route that needs a key', 20, 1, 1_000_000),
  authFailWindowMs: int('RISKMON_AUTH_FAIL_WINDOW_MS', 'window of RISKMON_AUTH_FAIL_MAX in ms', 60_000, 1000, 3_600_000),
  sessionTtlMs: int('RISKMON_SESSION_TTL_MS', 'lifetime of a dashboard sign-in (the cookie a key is exchanged for) in ms', 43_200_000, 60_000, 2_592_000_000),
  sessionMaxPerKey: int('RISKMON_SESSION_MAX_PER_KEY', 'live dashboard sign-ins per API key; a new one beyond it ends the oldest', 20, 1, 1000),
  backtestMaxQueued: int('RISKMON_BACKTEST_MAX_QUEUED', 'backtests one caller may have queued or running at once', 2, 1, 100),
  httpRequestTimeoutMs: int('RISKMON_HTTP_REQUEST_TIMEOUT_MS', 'time a client has to send a whole request (408 after it)', 30_000, 1000, 600_000),
  httpIdleTimeoutMs: int('RISKMON_HTTP_IDLE_TIMEOUT_MS', 'an HTTP connection that sends nothing for this long is closed (not WebSocket connections: those are pinged)', 60_000, 1000, 3_600_000),
  pgStatementTimeoutMs: int('RISKMON_API_STATEMENT_TIMEOUT_MS', 'statement_timeout of the API\'s PostgreSQL connections (risk store and source) in ms', 10_000, 100, 600_000),
  wsMaxConnections: int('RISKMON_WS_MAX_CONNECTIONS', 'WebSocket connections per API process; beyond, upgrades get 503', 1000, 1, 1_000_000),
  wsMaxPerKey: int('RISKMON_WS_MAX_PER_KEY', 'WebSocket connections per API key and process; beyond, upgrades get 429', 20, 1, 100_000),
  wsMaxBufferedBytes: int('RISKMON_WS_MAX_BUFFERED_BYTES', 'a WebSocket client whose unsent messages exceed this is closed (it does not keep up)', 1_048_576, 4096, 268_435_456),
  wsPingMs: int('RISKMON_WS_PING_MS', 'every this many ms each WebSocket client is pinged; one that did not answer the previous ping is closed', 30_000, 1000, 600_000),
  wsMaxMessages: int('RISKMON_WS_MAX_MESSAGES', 'messages (subscribe, unsubscribe) a WebSocket client may send per 10 s; beyond, it is closed', 30, 1, 10_000),
  seriesPollMs: int('RISKMON_WS_SERIES_POLL_MS', 'how often live series are read for subscribed merchants', 1000, 100, 60_000),
};

export const apiSpec = {
  ...connections('pgUrl', 'riskPgUrl', 'kafkaBrokers', 'redisUrl'),
  ...commonSpec,
  ...apiOptions,
  mapping: mappingOption,
  settlementDays: settlementDaysOption,
};
