/**
 * What is wrong with a config file that is not valid JSON, told without quoting the file. V8's own message quotes the
 * text around the fault (`Unexpected token 'Z', ..."piToken": Zq7xWv3kTn"... is not valid JSON`), and the file is
 * where the API token and the engine key live: a value written without its quotes went to the terminal and the service
 * journal. The parser's words are kept up to the first quoted piece, and its position becomes a line and a column.
 */

/**
 * The problem of a failed `JSON.parse(text)`, e.g. `Expected double-quoted property name; line 2, column 27`.
 *
 * @example
 * try { JSON.parse(text) } catch (err) { issues.push(`is not valid JSON (${jsonSyntaxProblem(err, text)})`) }
 */
export function jsonSyntaxProblem(err: unknown, text: string): string {
  const message = err instanceof Error ? err.message : String(err);
  // From the file: the unexpected character (`'Z'`) and the text around it (`"..."`); the single-quoted characters of
  // `Expected ',' or '}'` are the grammar's.
  const words = (message.replace(/^Unexpected token\b.*/s, "Unexpected token").split(/"|\.\.\./)[0] ?? "")
    .replace(/\s+at position \d+.*$/, "")
    .replace(/\s+in JSON$/, "")
    .replace(/[\s,]+$/, "");
  const at = /\bat position (\d+)/.exec(message);
  const where = at === null ? undefined : lineAndColumn(text, Number(at[1]));
  const what = words === "" ? "a syntax error" : words;
  return where === undefined ? what : `${what}; ${where}`;
}

/** `line L, column C` (both from 1) of the character at `position` in `text`. */
function lineAndColumn(text: string, position: number): string | undefined {
  if (!Number.isSafeInteger(position) || position < 0 || position > text.length) return undefined;
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - (before.lastIndexOf("\n") + 1) + 1;
  return `line ${line}, column ${column}`;
}
