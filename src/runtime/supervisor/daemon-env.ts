/** The environment variable that carries the validated manifest to a detached supervisor. */
export const DAEMON_ENV = 'KOALA_DAEMON';
