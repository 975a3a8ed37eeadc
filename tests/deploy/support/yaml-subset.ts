/**
 * The YAML that deploy/prometheus/alerts.yml is written in, parsed in a few lines rather than with a YAML library the
 * project does not otherwise need: block mappings and block sequences of mappings, indented by spaces, each value a
 * double-quoted string (read as JSON), a plain scalar on its line, or a folded block (`>-`) whose lines share one
 * indentation and are joined by spaces. Anything else is refused with its line, so the file stays in a form that any
 * YAML parser (Prometheus's included) reads the same way.
 */

export type YamlValue = string | YamlValue[] | { [key: string]: YamlValue };
type YamlMap = { [key: string]: YamlValue };

interface Frame {
  /** Indentation of the lines that belong to this container. */
  indent: number;
  node: YamlMap | YamlValue[];
}

const LINE = /^( *)(- )?([A-Za-z_][\w-]*):(?: (.*))?$/;
// Characters a plain scalar may not start with (they open another kind of YAML node), and sequences it may not hold.
const PLAIN_START = /^[[\]{}&*!|>'"%@`#,?:-]/;

/** A value as written after `key: `. */
function scalar(text: string, lineNo: number): string {
  if (text.startsWith('"')) {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "string") throw new Error(`line ${lineNo}: not a string`);
    return value;
  }
  if (PLAIN_START.test(text) || text.includes(": ") || text.includes(" #") || text.endsWith(":")) {
    throw new Error(`line ${lineNo}: quote this value: ${text}`);
  }
  return text;
}

/** Parses `text`; throws naming the line of the first construct outside the subset. */
export function parseYamlSubset(text: string): YamlMap {
  const root: YamlMap = {};
  const stack: Frame[] = [{ indent: 0, node: root }];
  let pending: { map: YamlMap; key: string; indent: number; lineNo: number } | undefined;
  let folded: { map: YamlMap; key: string; indent: number; lineNo: number; lines: string[]; at?: number } | undefined;
  const endFolded = (): void => {
    if (folded === undefined) return;
    if (folded.lines.length === 0) throw new Error(`line ${folded.lineNo}: ${folded.key} has no value`);
    folded.map[folded.key] = folded.lines.join(" ");
    folded = undefined;
  };
  const lines = text.split("\n");
  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1;
    const lineIndent = raw.length - raw.trimStart().length;
    if (folded !== undefined && raw.trim() !== "" && lineIndent > folded.indent) {
      // More indented lines than the first keep their line breaks in YAML: refused rather than read differently.
      folded.at ??= lineIndent;
      if (folded.at !== lineIndent) throw new Error(`line ${lineNo}: a folded line indented apart`);
      folded.lines.push(raw.trim());
      continue;
    }
    endFolded();
    if (raw.trim() === "" || raw.trimStart().startsWith("#")) continue;
    const match = LINE.exec(raw.trimEnd());
    if (match === null) throw new Error(`line ${lineNo}: not a "key: value" or "- key: value" line`);
    const [, spaces, dash, key, value = ""] = match;
    const indent = spaces.length;
    if (pending !== undefined) {
      if (indent <= pending.indent) throw new Error(`line ${pending.lineNo}: ${pending.key} has no value`);
      const container: YamlMap | YamlValue[] = dash === undefined ? {} : [];
      pending.map[pending.key] = container;
      stack.push({ indent, node: container });
      pending = undefined;
    }
    while ((stack.at(-1) as Frame).indent > indent) stack.pop();
    const top = stack.at(-1) as Frame;
    if (top.indent !== indent) throw new Error(`line ${lineNo}: unexpected indentation`);
    let map: YamlMap;
    if (dash !== undefined) {
      if (!Array.isArray(top.node)) throw new Error(`line ${lineNo}: a list item where a key was expected`);
      map = {};
      top.node.push(map);
      stack.push({ indent: indent + 2, node: map });
    } else {
      if (Array.isArray(top.node)) throw new Error(`line ${lineNo}: a key where a list item was expected`);
      map = top.node;
    }
    if (key in map) throw new Error(`line ${lineNo}: ${key} given twice`);
    const keyIndent = dash === undefined ? indent : indent + 2;
    if (value === "") pending = { map, key, indent: keyIndent, lineNo };
    else if (value === ">-") folded = { map, key, indent: keyIndent, lineNo, lines: [] };
    else map[key] = scalar(value, lineNo);
  }
  endFolded();
  if (pending !== undefined) throw new Error(`line ${pending.lineNo}: ${pending.key} has no value`);
  return root;
}
