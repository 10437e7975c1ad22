import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Secret-shaped fields are replaced by "[redacted]" wherever they are logged: keys, tokens, passwords, cookies,
 * authorization headers, connection strings that may carry a password. A secret must still never be put into a
 * message string; this catches the objects.
 */
export const REDACT = [
  'key', 'apiKey', 'token', 'password', 'secret', 'cookie', 'authorization', 'connectionString', 'webhookUrl', '*.webhookUrl',
  '*.key', '*.apiKey', '*.token', '*.password', '*.secret', '*.cookie', '*.authorization', '*.connectionString',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie', '*.headers["set-cookie"]',
  'config.password', 'config.connectionString', 'cfg.apiKeys', 'cfg.pgUrl', 'cfg.riskPgUrl', 'cfg.keyIdSecret',
];

/** The root logger; components take `logger.child({ component: 'cdc' })` and pass it down. */
export const logger: Logger = pino({
  level: process.env.RISKMON_LOG_LEVEL || 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: { paths: REDACT, censor: '[redacted]' },
});

export function componentLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return logger.child({ component, ...fields });
}
