/**
 * The metric names a PromQL expression selects, and the names a Prometheus text exposition offers: enough to tell an
 * alert rule that names a series the bridge never exports (a typo, a renamed metric) from one that will fire.
 */

// Words of PromQL that are not metric names where they stand alone (functions and aggregations are followed by `(`).
const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"]);
const MORE_KEYWORDS = new Set(["bool", "offset", "inf", "nan"]);

/** The metric names `expr` selects, in order of first appearance. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replaceAll(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replaceAll(/\{[^}]*\}/g, " ")
    .replaceAll(/\[[^\]]*\]/g, " ")
    .replaceAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names: string[] = [];
  for (const match of bare.matchAll(/(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const [, word, call] = match;
    if (call !== undefined || KEYWORDS.has(word) || MORE_KEYWORDS.has(word.toLowerCase())) continue;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** Every series name a scrape of `exposition` can hold: each `# TYPE` family, a histogram's and summary's parts too. */
export function exportedSeriesNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match;
    names.add(name);
    if (type === "histogram") for (const part of ["_bucket", "_sum", "_count"]) names.add(name + part);
    if (type === "summary") for (const part of ["_sum", "_count"]) names.add(name + part);
  }
  return names;
}
