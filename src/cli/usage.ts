// The help text of `hubex-router --help`; docs/cli.md says the same at length.
import { FIXTURES } from './fixtures.js';

export const USAGE = `hubex-router: a durable webhook receiver and handler runner for HubEx

Usage: hubex-router <command> [options]

Commands:
  serve                         run the router (the default)
  doctor                        check each part (configuration, store, HubEx token, X-Application-ID, webhook)
  token                         print the webhook URL to register in HubEx
  webhooks list                 HubEx's webhooks, with calls left and the last call (failures shown)
  webhooks register --events 40,41 [--stages 1,2] [--name NAME] [--url PUBLIC_URL] [--inactive]
                                create a HubEx webhook that calls this router (POST /MSG/Webhooks)
  webhooks activate|deactivate|delete ID
  events                        the event catalogue (ids and names handlers subscribe to)
  deliveries list               deliveries with their last error
      [--status pending|running|done|dead] [--handler NAME] [--event NAME] [--limit N] [--after ID]
  deliveries show ID            one delivery, its event and every attempt
  deliveries replay ID...       run deliveries again (dead or done ones), history kept
  deliveries replay --all-dead  every dead one [--handler NAME] [--event NAME]
  send FILE | -                 post a payload (a file, or stdin) to a running router
  send EVENT [--asset N] [--task N]   post a built-in sample (${Object.keys(FIXTURES).join(', ')})
      [--url URL]               the router's base URL (default http://127.0.0.1:PORT)
  fake-hubex [--port N] [--token T]   a fake HubEx API on 127.0.0.1 (default port 4010), for developing handlers

Options: --json (machine-readable output), --help.
Settings come from the environment and .env, as for serve (DATA_DIR, PORT, WEBHOOK_TOKENS, ...).
`;
