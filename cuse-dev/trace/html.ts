// `report --html`: one self-contained HTML file (inline data, script and style; nothing fetched) with the userptr
// lifetime picture of a trace (lifetime-view.ts draws it from the model of lifetime.ts).
import type { Trace } from './reader';
import { lifetimes, type BoLife } from './lifetime';
import type { TraceRecord } from './schema';
import { VIEWER_CSS, VIEWER_JS } from './lifetime-view';

/** Embedded records: what a tooltip or the panel shows (the creating and deleting ioctls, the ioctls marks happened in, their causes). */
type Kept = Record<string, unknown>;

/** The page's data: compact arrays, since a 100k-event trace is parsed before the first paint. */
export interface ViewData {
  title: string;
  header: Trace['header'];
  groups: { pid: number; file: number; label: string }[];
  /** i: index, g: group, h: handle, r: resource, c/ci: create seq / its ioctl, d/w/dc: deletion seq, why, cause,
   *  rs: [seq, start, end) ranges, m: [seq, kind, detail, cause seq, ioctl seq] marks. */
  bos: { i: number; g: number; h: number; r: number | null; c: number; ci: number | null; d: number | null; w: string | null; dc: number | null; rs: [number, number, number][]; m: [number, string, string, number | null, number | null][] }[];
  recs: Record<number, Kept>;
  end: number;
}

export function viewData(tr: Trace, title: string): ViewData {
  const life = lifetimes(tr.records);
  const groups: ViewData['groups'] = [];
  const groupOf = new Map<string, number>();
  const bySeq = new Map<number, TraceRecord>();
  for (const r of tr.records) bySeq.set(r.seq, r);
  const recs: Record<number, Kept> = {};
  const keep = (seq: number | undefined): number | null => {
    if (seq === undefined) return null;
    if (!(seq in recs)) {
      const r = bySeq.get(seq);
      if (r) { const { ts, ...rest } = r as unknown as Kept; void ts; recs[seq] = rest; }
    }
    return seq;
  };
  const group = (b: BoLife): number => {
    const k = `${b.pid}:${b.file}`;
    let g = groupOf.get(k);
    if (g === undefined) { g = groups.length; groupOf.set(k, g); groups.push({ pid: b.pid, file: b.file, label: `client ${b.pid}, file ${b.file}` }); }
    return g;
  };
  const bos = life.bos.map((b) => ({
    // A mark's own record is its detail string; the page keeps the ioctls and the memory events they point to.
    i: b.id, g: group(b), h: b.handle, r: b.resId ?? null, c: b.created.ioctl === undefined ? keep(b.created.seq)! : b.created.seq, ci: keep(b.created.ioctl),
    d: b.deleted ? b.deleted.seq : null, w: b.deleted?.why ?? null, dc: keep(b.deleted?.cause),
    rs: b.ranges.map((x): [number, number, number] => [x.seq, x.start, x.end]),
    m: b.marks.map((m): [number, string, string, number | null, number | null] => [m.seq, m.kind, m.detail, keep(m.cause), keep(m.ioctl ?? (m.kind === 'delete' ? b.deleted?.ioctl : undefined))]),
  }));
  return { title, header: tr.header, groups, bos, recs, end: Math.max(life.endSeq, 1) };
}

/** JSON inside a script element: "<" escaped so no record can close it. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c');
const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function toHtml(tr: Trace, title: string): string {
  const data = viewData(tr, title);
  const h = tr.header;
  const legend = [['split', '#e67e00'], ['evict', '#d0021b'], ['dedup hit', '#1f6fd1'], ['notifier', '#888'], ['deleted', '#000']]
    .map(([n, c]) => `<span><i style="background:${c}"></i>${n}</span>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} — userptr lifetimes</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<style>${VIEWER_CSS}</style></head>
<body>
<header><h1>${esc(title)}</h1><span>uapi ${esc(String(h.uapi))}, mode ${esc(String(h.mode))}, profile ${esc(String(h.profile))}, ${data.bos.length} userptr BOs, ${tr.records.length} records${tr.complete ? '' : ' (partial)'}</span>
<span class="legend">${legend}</span><span>x: trace seq · y: address (each BO boundary one step) · wheel: zoom time · shift+wheel: zoom addresses · drag: pan · click: details</span></header>
<main><div id="wrap"><canvas id="view"></canvas><div id="tip"></div></div>
<aside><div id="detail">Click a bar or a list entry.</div><details open><summary>BOs (${data.bos.length})</summary><ol id="bo-list" start="0"></ol></details></aside></main>
<script type="application/json" id="trace-data">${scriptJson({ ...data, recs: undefined })}</script>
<script>${VIEWER_JS}</script>
<!-- After the viewer: the first paint does not wait for the parser to read the records (the bulk of the file). -->
<script type="application/json" id="trace-records">${scriptJson(data.recs)}</script>
</body></html>
`;
}
