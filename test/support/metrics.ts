/** Reading a Prometheus text exposition in tests. */

/** The samples of one metric: label text (`{a="b",…}` or empty) and value. */
export function samples(text: string, name: string): { labels: string; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => {
      const m = /^[a-z_:]+(\{.*\})? (\S+)$/.exec(line);
      return { labels: m?.[1] ?? '', value: Number(m?.[2]) };
    });
}

/** The sum of a metric's samples whose labels include every `key="value"` given. */
export function total(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return samples(text, name)
    .filter((s) => wanted.every((w) => s.labels.includes(w)))
    .reduce((sum, s) => sum + s.value, 0);
}
