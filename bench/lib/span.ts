// Wall time and this process's CPU time over one timed span of a worker.

export interface SpanResult {
  seconds: number;
  /** CPU (user + system, every thread) this process used in the span, µs. */
  cpuUs: number;
}

export function startSpan(): { end(): SpanResult } {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return {
    end() {
      const used = process.cpuUsage(cpu);
      return { seconds: (performance.now() - start) / 1000, cpuUs: used.user + used.system };
    },
  };
}
