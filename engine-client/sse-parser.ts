/**
 * An incremental parser for `text/event-stream` (WHATWG HTML, "Server-sent events", 9.2.6), the framing of
 * OpenAI-compatible streaming. Lines may end in CRLF, LF or CR; an event may be split across any number of
 * network chunks (even between the CR and the LF); `:` lines are keep-alive comments; several `data:` lines
 * of one event are joined with "\n".
 *
 * One departure from the spec, which ignores unknown fields: llama.cpp server sends a streaming error as an `error:`
 * line (`error: {"code":400,"message":...}`), so an `error` field is read as a `data` line of an event named "error".
 */

/** One dispatched event. `event` is "message" unless the server named it. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Feed decoded text with `push`, get complete events back; call `end` when the stream closes (an event
 * without its terminating blank line is dropped, as the spec says).
 *
 * @example
 * const parser = new SseParser();
 * for (const event of parser.push("data: {\"a\":1}\n\n")) console.log(event.data);
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | undefined;
  /** The previous chunk ended in CR: a LF at the start of the next chunk belongs to that line ending. */
  #skipLeadingLf = false;
  #started = false;

  push(text: string): SseEvent[] {
    let input = text;
    if (!this.#started && input.length > 0) {
      this.#started = true;
      if (input.charCodeAt(0) === 0xfeff) input = input.slice(1);
    }
    if (input.length === 0) return [];
    if (this.#skipLeadingLf && input.startsWith("\n")) input = input.slice(1);
    this.#skipLeadingLf = false;
    this.#buffer += input;
    const events: SseEvent[] = [];
    let start = 0;
    if (!this.#buffer.includes("\r")) {
      // Fast path for LF-only streams (vLLM, SGLang): jump from line end to line end with indexOf.
      for (let end = this.#buffer.indexOf("\n"); end !== -1; end = this.#buffer.indexOf("\n", start)) {
        const event = this.#line(this.#buffer.slice(start, end));
        start = end + 1;
        if (event !== undefined) events.push(event);
      }
      this.#buffer = this.#buffer.slice(start);
      return events;
    }
    for (let i = 0; i < this.#buffer.length; i++) {
      const ch = this.#buffer.charCodeAt(i);
      if (ch !== 0x0a && ch !== 0x0d) continue;
      const line = this.#buffer.slice(start, i);
      if (ch === 0x0d) {
        if (i + 1 < this.#buffer.length) {
          if (this.#buffer.charCodeAt(i + 1) === 0x0a) i++;
        } else {
          this.#skipLeadingLf = true;
        }
      }
      start = i + 1;
      const event = this.#line(line);
      if (event !== undefined) events.push(event);
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  /** Ends the stream. Returns nothing: an unterminated event is discarded (it may be half of a JSON object). */
  end(): SseEvent[] {
    this.#buffer = "";
    this.#data = [];
    this.#event = "";
    return [];
  }

  /**
   * Whether what the stream left unterminated (an event without its blank line, its last line perhaps without a
   * line ending) is exactly `data: [DONE]`. The spec drops such an event; a caller may still take it as the end of an
   * OpenAI-compatible stream: every chunk before it arrived whole, so nothing was lost.
   */
  endsWithDone(): boolean {
    const data = [...this.#data];
    const line = this.#buffer.endsWith("\r") ? this.#buffer.slice(0, -1) : this.#buffer;
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    else if (line.length > 0 && !line.startsWith(":")) return false;
    return data.join("\n") === "[DONE]";
  }

  /** Bytes held for an incomplete line, so a caller can bound memory against a server that never sends LF. */
  get pendingLength(): number {
    return this.#buffer.length + this.#data.reduce((n, d) => n + d.length, 0);
  }

  #line(line: string): SseEvent | undefined {
    if (line.length === 0) return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#event = value;
        break;
      case "error":
        // llama.cpp server's streaming error (see the file comment): its text is the event's data.
        this.#event = "error";
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      default:
        // `retry` and unknown fields carry nothing an API client needs.
        break;
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    if (this.#data.length === 0) {
      this.#event = "";
      return undefined;
    }
    const event: SseEvent = { event: this.#event || "message", data: this.#data.join("\n") };
    if (this.#id !== undefined) event.id = this.#id;
    this.#data = [];
    this.#event = "";
    return event;
  }
}
