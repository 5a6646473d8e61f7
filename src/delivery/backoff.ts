// The delivery's retry delays are the HubEx client's: one backoff for both, kept where the
// client (which imports nothing of the app) can reach it.
export { retryDelay, type BackoffOptions } from '../hubex/backoff.js';
