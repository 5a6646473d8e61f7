// Runs the router: configuration from the environment, the app, the listening socket, signals.
import type { Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type Config, ConfigError, configWarnings, loadConfig, readEnv } from './config.js';
import { HandlerLoadError, handlerFolders, loadHandlers } from './delivery/loader.js';
import { createLogger } from './observability/log.js';
import { installProcessGuards } from './observability/process-guards.js';
import { describeStore } from './store/open.js';
import { buildApp } from './server.js';
import { adminTokenProblem, maskToken, resolveWebhookTokens } from './webhook-tokens.js';

/** Exit code for a configuration that cannot work (sysexits' EX_CONFIG). */
const EX_CONFIG = 78;

export async function main(env = readEnv()): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`hubex-router: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }

  const log = createLogger(config.logLevel, undefined, { buffered: true });
  // From here on, an error nobody caught (a handler's, usually) is logged, not a silent exit.
  // eslint-disable-next-line prefer-const -- assigned once below, but the guards refer to it first
  let app: FastifyInstance | undefined;
  installProcessGuards({
    log,
    onError: (kind) => app?.metrics.uncaughtErrors.inc({ kind }),
    stop: async () => {
      app?.dispatcher?.abandon();
      await app?.close();
    },
  });
  for (const warning of configWarnings(config)) log.warn(warning);
  let tokens;
  try {
    tokens = resolveWebhookTokens(config);
    const problem = adminTokenProblem(config.adminToken, tokens.tokens);
    if (problem) throw new Error(problem);
  } catch (err) {
    process.stderr.write(`hubex-router: ${(err as Error).message}\n`);
    process.exit(EX_CONFIG);
  }
  let handlers;
  try {
    handlers = await loadHandlers(handlerFolders(config.handlersDir));
  } catch (err) {
    if (!(err instanceof HandlerLoadError)) throw err;
    process.stderr.write(`hubex-router: cannot load a handler: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
  log.info(
    { handlers: handlers.map((h) => (h.enabled === false ? `${h.name} (disabled)` : h.name)) },
    `${handlers.filter((h) => h.enabled !== false).length} handler(s) enabled`,
  );
  app = await buildApp(config, { logger: log, tokens: tokens.tokens, handlers });
  await app.listen({ port: config.port, host: config.host });
  process.stderr.write(
    banner(config, app.server.address(), tokens.generatedFile ? { token: tokens.tokens[0]!, created: tokens.created === true } : undefined),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // Handlers get SHUTDOWN_TIMEOUT_MS, then are aborted; this is the last resort beyond that.
    const limitMs = config.shutdownTimeoutMs + 10_000;
    const timer = setTimeout(() => {
      log.error(`did not stop within ${limitMs} ms; exiting`);
      process.exit(1);
    }, limitMs);
    timer.unref();
    await app?.close();
    log.info('stopped');
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/**
 * What an administrator pastes into HubEx. Printed on stderr, outside the JSON log. A generated
 * token is shown in full once, when it is made; later starts mask it (stderr often ends up in a
 * journal others read), and `hubex-router token` shows it. A configured one is never shown.
 */
function banner(config: Config, address: ReturnType<Server['address']>, generated?: { token: string; created: boolean }): string {
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = config.publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const shown = generated ? (generated.created ? generated.token : maskToken(generated.token)) : '<one of WEBHOOK_TOKENS>';
  const lines = [
    '',
    `hubex-router is listening on ${config.host}:${port} (store: ${config.queue}, ${describeStore(config)})`,
    '',
    '  Webhook URL to register in HubEx:',
    `    ${base}/hooks/hubex/${shown}`,
  ];
  if (generated?.created) lines.push('', '  The token was generated and is kept in DATA_DIR; set WEBHOOK_TOKENS to choose your own.');
  else if (generated) lines.push('', '  The token is masked; `hubex-router token` (in a clone: `npm run cli token`) prints the whole URL.');
  if (!config.publicUrl) lines.push('  Set PUBLIC_URL to the address HubEx reaches (https://...) to print the URL to register.');
  if (config.reconcileIntervalMs > 0) {
    lines.push(
      `  HubEx is also asked every ${config.reconcileIntervalMs / 1000} s which tasks changed: handlers get task.modified for changes no webhook brought,`,
      '  so they hear of changes even before a webhook is registered (docs/reconciliation.md).',
    );
  }
  return `${lines.join('\n')}\n\n`;
}

main().catch((err: unknown) => {
  process.stderr.write(`hubex-router: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
