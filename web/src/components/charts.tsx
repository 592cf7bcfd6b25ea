/** Small hand-drawn SVG charts: lines over time and horizontal bars. No chart library, no CDN. */
import type { ReactElement } from 'react';

export interface Series {
  name: string;
  points: Array<[number, number]>; // [time ms, value]
}

const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#4b5563'];

export function LineChart({ series, format, height = 220 }: { series: Series[]; format: (v: number) => string; height?: number }): ReactElement {
  const width = 720;
  const pad = { l: 80, r: 16, t: 12, b: 28 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return <p className="muted">No samples yet.</p>;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1) * 1.1;
  const X = (t: number): number => pad.l + ((t - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v: number): number => height - pad.b - (v / y1) * (height - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * y1);
  return (
    <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img">
      {ticks.map((v) => (
        <g key={v}>
          <line x1={pad.l} x2={width - pad.r} y1={Y(v)} y2={Y(v)} stroke="#e5e7eb" />
          <text x={pad.l - 6} y={Y(v) + 4} textAnchor="end" fontSize="11">{format(v)}</text>
        </g>
      ))}
      <text x={pad.l} y={height - 8} fontSize="11">{new Date(x0).toLocaleString()}</text>
      <text x={width - pad.r} y={height - 8} fontSize="11" textAnchor="end">{new Date(x1).toLocaleString()}</text>
      {series.map((s, i) => (
        <g key={s.name}>
          <polyline fill="none" stroke={COLORS[i % COLORS.length]} strokeWidth="2" points={s.points.map(([t, v]) => `${X(t)},${Y(v)}`).join(' ')} />
          {s.points.map(([t, v]) => <circle key={t} cx={X(t)} cy={Y(v)} r="2.5" fill={COLORS[i % COLORS.length]} />)}
        </g>
      ))}
      {series.map((s, i) => (
        <text key={s.name} x={pad.l + 8 + i * 140} y={pad.t + 10} fontSize="11" fill={COLORS[i % COLORS.length]}>■ {s.name}</text>
      ))}
    </svg>
  );
}

export function BarChart({ rows, format }: { rows: Array<{ label: string; values: Array<{ name: string; value: number }> }>; format: (v: number) => string }): ReactElement {
  const width = 720;
  const rowH = 22;
  const label = 140;
  const max = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v.value)));
  const per = rows[0]?.values.length ?? 1;
  const height = rows.length * (per * rowH + 10) + 10;
  let y = 10;
  return (
    <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img">
      {rows.map((r) => {
        const top = y;
        y += per * rowH + 10;
        return (
          <g key={r.label}>
            <text x={0} y={top + 15} fontSize="12">{r.label}</text>
            {r.values.map((v, i) => {
              const w = (v.value / max) * (width - label - 120);
              return (
                <g key={v.name}>
                  <rect x={label} y={top + i * rowH} width={Math.max(1, w)} height={rowH - 6} fill={COLORS[i % COLORS.length]} />
                  <text x={label + w + 6} y={top + i * rowH + 12} fontSize="11">{v.name}: {format(v.value)}</text>
                </g>
              );
            })}
          </g>
        );
      })}
    </svg>
  );
}
