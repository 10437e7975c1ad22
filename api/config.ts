/** Options of the api component (composed with the shared connection and common specs). */
import { apiKeys, commonSpec, connections, int, mappingOption, optStr, secret } from '../lib/config.ts';

export const apiOptions = {
  httpPort: int('RISKMON_HTTP_PORT', 'port of the REST API, WebSocket and dashboard', 8080, 0, 65535),
  httpHost: optStr('RISKMON_HTTP_HOST', 'address to listen on (default 0.0.0.0)'),
  apiKeys: secret(apiKeys('RISKMON_API_KEYS', 'API keys: key:role or key:role:name, role viewer, analyst or admin; the name is the actor recorded for the key')),
  corsOrigins: optStr('RISKMON_CORS_ORIGINS', 'comma-separated origins allowed by CORS; unset: CORS off'),
  bodyLimit: int('RISKMON_HTTP_BODY_LIMIT', 'largest request body in bytes', 65_536, 1024, 10_485_760),
  rateLimitMax: int('RISKMON_RATE_LIMIT_MAX', 'requests per key (or address) per rate-limit window; 0 turns it off', 1200, 0, 10_000_000),
  rateLimitWindowMs: int('RISKMON_RATE_LIMIT_WINDOW_MS', 'rate-limit window in ms', 60_000, 1000, 3_600_000),
  seriesPollMs: int('RISKMON_WS_SERIES_POLL_MS', 'how often live series are read for subscribed merchants', 1000, 100, 60_000),
};

export const apiSpec = {
  ...connections('pgUrl', 'riskPgUrl', 'kafkaBrokers', 'redisUrl'),
  ...commonSpec,
  ...apiOptions,
  mapping: mappingOption,
};
