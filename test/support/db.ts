// Reads the router's SQLite file directly, as an operator would, to check what is on disk.
import { join } from 'node:path';
import { Database } from '../../src/store/sqlite/driver.js';
import { DB_FILE } from '../../src/store/sqlite/store.js';

export interface EventRow {
  id: string;
  name: string;
  event_id: number | null;
  duplicates: number;
  entity_type: string | null;
  entity_id: string | null;
  /** How many deliveries the event fanned out to; 0 = unrouted. */
  routed: number;
  raw: string;
}

export function readEvents(dataDir: string): EventRow[] {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT id, name, event_id, duplicates, entity_type, entity_id, routed, raw FROM events ORDER BY seq')
      .all() as EventRow[];
  } finally {
    db.close();
  }
}
