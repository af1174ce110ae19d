// Reads a V8 .cpuprofile: self time per function and per file, busy time only (idle excluded),
// optionally as µs per call.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('/node_modules/');
  if (nm >= 0) return clean.slice(nm + '/node_modules/'.length);
  const src = clean.indexOf('/src/');
  if (src >= 0) return clean.slice(src + 1);
  const bench = clean.indexOf('/bench/');
  if (bench >= 0) return clean.slice(bench + 1);
  return clean;
}

function fileGroup(url: string): string {
  const s = shortUrl(url);
  if (s === '') return '(native/VM)';
  if (s.startsWith('node:')) return s;
  const parts = s.split('/');
  // Packages by name; our sources by file.
  if (!s.startsWith('src/') && !s.startsWith('bench/')) return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  return s;
}

export interface ProfileSummary {
  busyMs: number;
  byFunction: [string, number][];
  byFile: [string, number][];
}

/** Self time (ms) per profile node, of the samples inside `window` (µs, the profile's clock: CLOCK_MONOTONIC). */
function selfByNode(profile: CpuProfile, window?: [number, number]): Map<number, number> {
  const self = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window !== undefined && (t < window[0] || t > window[1])) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + delta / 1000);
  }
  return self;
}

function nodeName(cf: ProfileNode['callFrame']): string {
  return `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`;
}

/** Inclusive time per function (each function counted once per stack), within `window`. */
export function inclusiveTimes(profile: CpuProfile, window?: [number, number]): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, ms] of selfByNode(profile, window)) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = nodeName(byId.get(cur)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      incl.set(name, (incl.get(name) ?? 0) + ms);
    }
  }
  return incl;
}

export function selfTimes(profile: CpuProfile, window?: [number, number]): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = selfByNode(profile, window);
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const { functionName, url } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busy += ms;
    const name = nodeName(byId.get(id)!.callFrame);
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const group = url ? fileGroup(url) : functionName;
    file.set(group, (file.get(group) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { busyMs: busy, byFunction: sorted(fn), byFile: sorted(file) };
}

/** Names of functions whose inclusive time is shown (the stages of a call through Koala or the ceiling). */
const STAGES = /^(readFrame|readEnvelope|writeEnvelope|write src\/runtime\/wire\/frame|take|#flush|#onEnvelope|#onFrame|request|reply|forward|#answer|#onRequest|#invoke|encodeArgs|decodeArgs|encodeResult|readAnswer|toBuffer|Type\.toBuffer|Type\.fromBuffer|enqueue|#drain|newChainId|createProxy|eachMessage|forward bench|send ws\/lib\/websocket|getData|\(garbage collector\))( |$)/;

export function summariseProfile(profile: CpuProfile, calls: number, window?: [number, number], top = 20): string {
  const s = selfTimes(profile, window);
  const wall = window ? (window[1] - window[0]) / 1000 : (profile.endTime - profile.startTime) / 1000;
  const stages = [...inclusiveTimes(profile, window)].filter(([name]) => STAGES.test(name)).sort((a, b) => b[1] - a[1]);
  const line = ([name, ms]: [string, number]) =>
    `${ms.toFixed(0).padStart(7)} ms ${((ms / s.busyMs) * 100).toFixed(1).padStart(5)} %${calls > 0 ? ` ${((ms * 1000) / calls).toFixed(2).padStart(7)} µs/call` : ''}  ${name}`;
  return [
    `busy ${s.busyMs.toFixed(0)} ms of ${wall.toFixed(0)} ms profiled${calls > 0 ? `; ${((s.busyMs * 1000) / calls).toFixed(2)} µs of CPU per call over ${calls} calls` : ''}`,
    '-- self time by file/package',
    ...s.byFile.slice(0, top).map(line),
    '-- self time by function',
    ...s.byFunction.slice(0, top).map(line),
    '-- inclusive time of the stages of a call',
    ...stages.slice(0, top).map(line),
  ].join('\n');
}
