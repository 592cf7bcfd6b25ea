/** A hook that loads data now and again every `everyMs`, with a manual reload. */
import { useCallback, useEffect, useState } from 'react';

export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): { data: T | undefined; error: string; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    const run = (): void => {
      load()
        .then((d) => {
          if (live) {
            setData(d);
            setError('');
          }
        })
        .catch((e: Error) => live && setError(e.message));
    };
    run();
    const t = everyMs > 0 ? setInterval(run, everyMs) : undefined;
    return () => {
      live = false;
      if (t) clearInterval(t);
    };
  }, [tick, everyMs, ...deps]);
  return { data, error, reload };
}
