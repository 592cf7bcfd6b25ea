/** Storage: pool usage over time and per protection group, from the server's usage samples. */
import type { ReactElement } from 'react';
import { api } from '../api';
import { bytes } from '../format';
import { usePoll } from '../poll';
import { BarChart, LineChart, type Series } from '../components/charts';

interface GroupUsage {
  group: string;
  sources: number;
  points: number;
  latestLogicalBytes: number;
  storedNewBytes: number;
}
interface Sample {
  time: string;
  storedBytes: number;
  packs: number;
  groups: GroupUsage[];
}

export function Storage(): ReactElement {
  const { data, error } = usePoll(() => api<{ samples: Sample[]; now: Sample }>('GET', '/api/v1/usage/samples'), 10_000);
  if (!data) return <p>{error || 'Loading…'}</p>;
  const samples = [...data.samples, data.now];
  const pool: Series = { name: 'pool (stored)', points: samples.map((s) => [Date.parse(s.time), s.storedBytes]) };
  const names = [...new Set(samples.flatMap((s) => s.groups.map((g) => g.group)))];
  const perGroup: Series[] = names.map((n) => ({
    name: n,
    points: samples.flatMap((s) => {
      const g = s.groups.find((x) => x.group === n);
      return g ? [[Date.parse(s.time), g.storedNewBytes] as [number, number]] : [];
    }),
  }));
  return (
    <div>
      <h1>Storage</h1>
      <p>
        The pool holds <b id="stored-bytes">{bytes(data.now.storedBytes)}</b> in {data.now.packs} packs.
      </p>
      <h2>Pool usage over time</h2>
      <div id="chart-pool"><LineChart series={[pool]} format={bytes} /></div>
      <h2>Per protection group over time (stored bytes its points brought)</h2>
      <div id="chart-groups-time"><LineChart series={perGroup} format={bytes} /></div>
      <h2>Per protection group now</h2>
      <div id="chart-groups">
        <BarChart
          format={bytes}
          rows={data.now.groups.map((g) => ({ label: `${g.group} (${g.sources} src, ${g.points} pts)`, values: [{ name: 'protected data', value: g.latestLogicalBytes }, { name: 'stored', value: g.storedNewBytes }] }))}
        />
      </div>
    </div>
  );
}
