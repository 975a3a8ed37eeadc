/**
 * The benchmark scripts' command-line readers, one copy for every suite. Scripts take `--name value` pairs and bare
 * `--switch`es in any order; an option given without its value falls back to the default.
 */

/** The value after `--name` on the command line, or `fallback`. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** Whether `--name` is on the command line (a switch without a value). */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** `--name a,b,c` as its items, or null when the option is absent (`--name` with no value gives one empty item). */
export function listOption(name: string): string[] | null {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? "").split(",") : null;
}
