// ConfigError is one of the router's errors (src/errors.ts).
export { ConfigError } from '../errors.js';
