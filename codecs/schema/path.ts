/**
 * A field path kept as a stack of keys while a codec walks a frame, turned into text (`r.temp`, `a[2]`) only when
 * an error needs it. Building the text for every key up front cost a string per map entry on the hot path.
 */
export class PathStack {
  private readonly parts: (string | number)[] = [];

  reset(): void {
    this.parts.length = 0;
  }

  push(part: string | number): void {
    this.parts.push(part);
  }

  pop(): void {
    this.parts.pop();
  }

  /** The current path as text; empty at the frame itself. */
  toString(): string {
    let out = "";
    for (const part of this.parts) {
      if (typeof part === "number") out += `[${part}]`;
      else out += out === "" ? part : `.${part}`;
    }
    return out;
  }
}
