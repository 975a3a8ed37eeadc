import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { capturingLogger, capturingRawLogger } from "./capturing-logger.ts";

describe("capturingLogger", () => {
  test("keeps the lines at or above its level, parsed, in the order they were logged", () => {
    const { logger, lines } = capturingLogger<{ level: number; msg: string; n?: number }>("warn");
    logger.info("too quiet");
    logger.warn({ n: 1 }, "first");
    logger.error("second");
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.n]),
      [
        [40, "first", 1],
        [50, "second", undefined],
      ],
    );
  });

  test("a child logger's lines land in the same array, with its bindings", () => {
    const { logger, lines } = capturingLogger("info");
    logger.child({ agent: "a-1" }).info("hello");
    assert.equal(lines[0]?.agent, "a-1");
  });

  test("calls onLine with each line once it is in the array", () => {
    const seen: Array<[string, number]> = [];
    const captured = capturingLogger<{ msg: string }>("info", {
      onLine: (line) => seen.push([line.msg, captured.lines.length]),
    });
    captured.logger.info("one");
    captured.logger.info("two");
    assert.deepEqual(seen, [
      ["one", 1],
      ["two", 2],
    ]);
  });
});

describe("capturingRawLogger", () => {
  test("keeps each line as pino wrote it, a key written twice included", () => {
    const { logger, lines } = capturingRawLogger("debug");
    logger.child({ agent: "a-1" }).debug({ agent: "a-1" }, "twice");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.match(/"agent":/g)?.length, 2, lines[0]);
    assert.ok(lines[0]?.endsWith("\n"));
  });
});
