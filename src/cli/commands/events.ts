// `events`: the event catalogue, the ids and names handlers subscribe to.
import { KNOWN_EVENTS } from '../../events/catalogue.js';
import { parse } from '../args.js';
import { formatTable } from '../format.js';
import { json, out } from '../output.js';

export function events(args: string[]): number {
  const { values } = parse(args);
  if (values.json) json(KNOWN_EVENTS);
  else {
    out(
      formatTable(
        ['id', 'name', 'entity'],
        KNOWN_EVENTS.map((e) => [e.id, e.name, e.entity ?? '']),
      ),
    );
    out('\nOther ids arrive as event.<id>; handlers may subscribe to either form.');
  }
  return 0;
}
