// The environment turned into the one Config, or one ConfigError naming every bad variable.
import { ConfigError } from './config-error.js';
import { maskUrl } from './mask-url.js';
import { isSecret } from './parsers.js';
import { type Config, configSchema, variables } from './schema.js';

export type Env = Readonly<Record<string, string | undefined>>;

type Problem = { variable: string; message: string };

/** Validates the environment; throws one ConfigError that names every bad variable. */
export function loadConfig(env: Env): Config {
  // An empty variable means "not set", as in most tools (and docker-compose's `FOO=`).
  const input: Record<string, string> = {};
  for (const key of Object.keys(variables.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v;
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '(environment)');
        const given = input[variable];
        const secret = isSecret(variables.shape[variable as keyof typeof variables.shape]);
        const shown = given === undefined || secret ? '' : ` (got ${JSON.stringify(maskUrl(given).slice(0, 200))})`;
        return { variable, message: issue.message + shown };
      }),
    );
  }
  const problems = crossProblems(result.data);
  if (problems.length) throw new ConfigError(problems);
  return result.data;
}

/** Rules between variables, checked once each variable is valid on its own. */
function crossProblems(c: Config): Problem[] {
  const problems: Problem[] = [];
  if (c.queue === 'redis' && !c.redisUrl) {
    problems.push({ variable: 'REDIS_URL', message: 'is required when QUEUE=redis' });
  }
  if (c.adminToken !== undefined && c.webhookTokens?.includes(c.adminToken)) {
    problems.push({
      variable: 'ADMIN_TOKEN',
      message: 'must differ from every token in WEBHOOK_TOKENS (a webhook token travels in URLs; it must not also open the admin API)',
    });
  }
  if (c.retryMaxMs < c.retryBaseMs) {
    problems.push({ variable: 'RETRY_MAX_MS', message: `must not be less than RETRY_BASE_MS (${c.retryBaseMs})` });
  }
  return problems;
}
