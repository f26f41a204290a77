// An independent check of Chrome trace-event JSON, written from the format's documented fields (the "Trace Event
// Format" document that chrome://tracing and the Perfetto UI's JSON importer follow): the JSON Object Format's top
// level, every event's required fields per phase, metadata names, counter values, flow ids, and the nesting rule
// for complete events on one thread. Returns every violation found (empty: valid).

/** Phases the format defines. */
const PHASES = new Set(['B', 'E', 'X', 'i', 'I', 'C', 'b', 'n', 'e', 's', 't', 'f', 'P', 'O', 'N', 'D', 'M', 'V', 'v', 'R', 'c', '(', ')']);
const METADATA = new Set(['process_name', 'process_labels', 'process_sort_index', 'thread_name', 'thread_sort_index']);
const TOP = new Set(['traceEvents', 'displayTimeUnit', 'otherData', 'stackFrames', 'samples', 'systemTraceEvents', 'controllerTraceDataKey', 'metadata']);

type Ev = Record<string, unknown>;
const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkTraceEventJson(doc: unknown): string[] {
  const bad: string[] = [];
  if (!isObj(doc)) return ['top level: the JSON Object Format is an object'];
  for (const k of Object.keys(doc)) if (!TOP.has(k)) bad.push(`top level: unknown key ${k}`);
  if (!Array.isArray(doc.traceEvents)) return [...bad, 'top level: traceEvents must be an array'];
  if (doc.displayTimeUnit !== undefined && doc.displayTimeUnit !== 'ms' && doc.displayTimeUnit !== 'ns') bad.push('displayTimeUnit must be "ms" or "ns"');
  if (doc.otherData !== undefined && !isObj(doc.otherData)) bad.push('otherData must be an object');
  const flows = new Map<string, { ph: string; ts: number }[]>();
  const slices = new Map<string, { ts: number; end: number; i: number }[]>();
  (doc.traceEvents as unknown[]).forEach((e, i) => {
    const at = `event ${i}`;
    if (!isObj(e)) { bad.push(`${at}: not an object`); return; }
    const ev = e as Ev;
    const ph = ev.ph;
    if (typeof ph !== 'string' || !PHASES.has(ph)) { bad.push(`${at}: unknown ph ${JSON.stringify(ph)}`); return; }
    if (typeof ev.name !== 'string') bad.push(`${at} (${ph}): name must be a string`);
    if (ev.cat !== undefined && typeof ev.cat !== 'string') bad.push(`${at}: cat must be a string`);
    if (!isInt(ev.pid)) bad.push(`${at}: pid must be an integer`);
    if (!isInt(ev.tid)) bad.push(`${at}: tid must be an integer`);
    if (ev.args !== undefined && !isObj(ev.args)) bad.push(`${at}: args must be an object`);
    if (ph !== 'M' && (!isNum(ev.ts) || (ev.ts as number) < 0)) bad.push(`${at} (${ph}): ts must be a number of µs ≥ 0`);
    switch (ph) {
      case 'X':
        if (!isNum(ev.dur) || (ev.dur as number) < 0) bad.push(`${at}: X needs dur ≥ 0`);
        else {
          const k = `${String(ev.pid)}/${String(ev.tid)}`;
          let l = slices.get(k);
          if (!l) slices.set(k, l = []);
          l.push({ ts: ev.ts as number, end: (ev.ts as number) + (ev.dur as number), i });
        }
        break;
      case 'i': case 'I':
        if (ev.s !== undefined && !['g', 'p', 't'].includes(ev.s as string)) bad.push(`${at}: instant scope s must be g, p or t`);
        break;
      case 'C':
        if (!isObj(ev.args) || Object.keys(ev.args).length === 0) bad.push(`${at}: C needs args with the series`);
        else for (const [k, v] of Object.entries(ev.args)) if (!isNum(v)) bad.push(`${at}: counter series ${k} must be a number`);
        break;
      case 's': case 't': case 'f': {
        if (typeof ev.id !== 'number' && typeof ev.id !== 'string') bad.push(`${at}: flow event needs an id`);
        if (typeof ev.cat !== 'string') bad.push(`${at}: flow event needs a cat (flows match on cat, name and id)`);
        if (ev.bp !== undefined && (ph !== 'f' || ev.bp !== 'e')) bad.push(`${at}: bp is only "e", on a flow end`);
        const k = `${String(ev.cat)}/${String(ev.name)}/${String(ev.id)}`;
        let l = flows.get(k);
        if (!l) flows.set(k, l = []);
        l.push({ ph, ts: ev.ts as number });
        break;
      }
      case 'M':
        if (!METADATA.has(ev.name as string)) bad.push(`${at}: unknown metadata name ${String(ev.name)}`);
        else if (!isObj(ev.args)) bad.push(`${at}: metadata needs args`);
        else if ((ev.name as string).endsWith('_name') && typeof ev.args.name !== 'string') bad.push(`${at}: ${String(ev.name)} needs args.name`);
        else if ((ev.name as string).endsWith('_sort_index') && !isInt(ev.args.sort_index)) bad.push(`${at}: ${String(ev.name)} needs args.sort_index`);
        break;
    }
  });
  for (const [k, l] of flows) {
    const phs = l.map((x) => x.ph).join('');
    if (!/^st*f$/.test(phs)) bad.push(`flow ${k}: phases ${phs}, expected one s, any t, one f`);
    for (let j = 1; j < l.length; j++) if (l[j]!.ts < l[j - 1]!.ts) bad.push(`flow ${k}: step ${j} goes back in time`);
  }
  // Complete events on one thread must nest: a slice that starts inside another ends inside it.
  for (const [k, l] of slices) {
    l.sort((a, b) => a.ts - b.ts || b.end - a.end);
    const open: { end: number; i: number }[] = [];
    for (const s of l) {
      while (open.length && open[open.length - 1]!.end <= s.ts) open.pop();
      const top = open[open.length - 1];
      if (top && s.end > top.end + 1e-9) bad.push(`thread ${k}: X event ${s.i} overlaps event ${top.i} without nesting`);
      open.push(s);
    }
  }
  return bad;
}
