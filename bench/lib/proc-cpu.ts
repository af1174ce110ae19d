// CPU time (user and system) a process has used so far, from /proc (Linux): measures what each
// process of a path costs per call, without a profiler's overhead and without counting time spent
// descheduled as busy.
import { readFileSync } from 'node:fs';

const TICKS_PER_SEC = 100; // USER_HZ on Linux

export interface CpuTimes {
  userMs: number;
  systemMs: number;
  /** Minor page faults so far: fresh memory touched (heap growth, new buffers) costs system time. */
  minorFaults: number;
}

/** CPU milliseconds used by `pid` so far (NaN where /proc is not available). */
export function cpuTimes(pid: number): CpuTimes {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", state is field 3, so utime (14) and stime (15) are at indices 11 and 12.
    // minflt (field 10) is at index 7.
    return { userMs: (Number(fields[11]) * 1000) / TICKS_PER_SEC, systemMs: (Number(fields[12]) * 1000) / TICKS_PER_SEC, minorFaults: Number(fields[7]) };
  } catch {
    return { userMs: NaN, systemMs: NaN, minorFaults: NaN };
  }
}
