import { pino, type Logger } from 'pino';

export type { Logger };

/** The root logger; components take `logger.child({ component: 'cdc' })` and pass it down. */
export const logger: Logger = pino({
  level: process.env.RISKMON_LOG_LEVEL || 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export function componentLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return logger.child({ component, ...fields });
}
