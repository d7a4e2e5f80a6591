import pino from 'pino';

export type Logger = pino.Logger;

/**
 * One JSON stream for the whole process. Fields that could carry a secret are redacted
 * by path as a second line of defence; the first is never putting them on a line at all.
 */
export function createLogger(
  options: { level?: string; name?: string } = {},
  destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.name ?? 'pool-reaper' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          'connection_url',
          'connectionUrl',
          'password',
          '*.connection_url',
          '*.password',
          'url',
          '*.url',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
