// The command table (oclif's "explicit" discovery): one import per command, no directory scan.
import Actors from './actors.ts';
import Call from './call.ts';
import Down from './down.ts';
import Init from './init.ts';
import Logs from './logs.ts';
import Reminders from './reminders.ts';
import Status from './status.ts';
import Up from './up.ts';
import Validate from './validate.ts';

export const commands = {
  actors: Actors,
  call: Call,
  down: Down,
  init: Init,
  logs: Logs,
  reminders: Reminders,
  status: Status,
  up: Up,
  validate: Validate,
};
