// HubEx client options read as the router reads them. It lives outside src/hubex because it uses
// the router's configuration, which the client must not import.
import { type Env, loadConfig } from './config.js';
import type { HubexClientOptions } from './hubex/index.js';

/**
 * Client options from HUBEX_* variables (HUBEX_BASE_URL, HUBEX_SERVICE_TOKEN or
 * HUBEX_ACCESS_TOKEN, HUBEX_APPLICATION_ID, HUBEX_TIMEOUT_MS, HUBEX_MAX_IN_FLIGHT), validated
 * by the router's own configuration, for scripts and tests that make a client of their own.
 */
export function hubexOptionsFromEnv(env: Env): HubexClientOptions {
  return { ...loadConfig(env).hubex };
}
