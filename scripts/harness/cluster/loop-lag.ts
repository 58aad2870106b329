// Event-loop lag of a running node, read from its /metrics (prom-client's nodejs_eventloop_lag_*).
//
// prom-client samples the loop delay with monitorEventLoopDelay (10 ms resolution here) and resets
// its histogram every time /metrics is collected. So a test scrapes once to start a window
// (`startLoopLagWindow`), does its work, and scrapes again (`readLoopLag`): the figures then cover
// exactly that window. Nothing else may scrape the node in between.

export interface LoopLag {
  /** Seconds. */
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

async function scrape(clientUrl: string): Promise<string> {
  const res = await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${clientUrl}/metrics answered ${res.status}`);
  return res.text();
}

function gauge(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  const value = Number(line.slice(line.lastIndexOf(' ') + 1));
  if (!Number.isFinite(value)) throw new Error(`${name} is not a number: ${line}`);
  return value;
}

/** Starts a measuring window on the node (the scrape resets prom-client's histogram). */
export async function startLoopLagWindow(clientUrl: string): Promise<void> {
  await scrape(clientUrl);
}

/** The loop lag since the last scrape of this node. */
export async function readLoopLag(clientUrl: string): Promise<LoopLag> {
  const text = await scrape(clientUrl);
  return {
    p99: gauge(text, 'nodejs_eventloop_lag_p99_seconds'),
    max: gauge(text, 'nodejs_eventloop_lag_max_seconds'),
    mean: gauge(text, 'nodejs_eventloop_lag_mean_seconds'),
  };
}
