// Configuration: the environment (and a .env file) parsed once, validated, frozen, and passed in.
// The parts live in config/, one a file; schema.ts declares every variable and derives Config.
export { ConfigError } from './config/config-error.js';
export { type Env, loadConfig } from './config/load.js';
export { maskUrl } from './config/mask-url.js';
export { readEnv } from './config/read-env.js';
export { type Config, VARIABLES } from './config/schema.js';
export { configWarnings } from './config/warnings.js';
