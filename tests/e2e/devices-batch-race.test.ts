/**
 * `devices add --count` when another process provisions one of its ids between the batch's check and its own add:
 * the batch stops with exit 1, but every device it did create in that round of hashing is printed with its secret.
 * The secrets are stored only as hashes, so a device whose secret is not printed could never log in.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DeviceRegistry } from "../../broker/registry/index.ts";
import { addBatch } from "../../app/cli/devices-batch.ts";
import { CliExit } from "../../app/cli/exit.ts";

test("a batch id taken meanwhile ends the batch, and the devices created beside it are still printed", async () => {
  const created: string[] = [];
  // A registry in which r-02 was added by someone else after the batch looked for clashes.
  const registry = {
    get: () => undefined,
    add: async (id: string) => {
      if (id === "r-02") return { status: "exists" as const };
      created.push(id);
      return { status: "created" as const, device: { id }, secret: `secret-of-${id}` };
    },
  } as unknown as DeviceRegistry;
  const lines: string[] = [];
  const stderr = process.stderr.write;
  process.stderr.write = () => true;
  let failure: unknown;
  try {
    await addBatch(registry, ["r-01", "r-02", "r-03", "r-04"], { json: true }, (line) => lines.push(line));
  } catch (err) {
    failure = err;
  } finally {
    process.stderr.write = stderr;
  }
  assert.ok(failure instanceof CliExit);
  assert.equal(failure.exitCode, 1);
  const printed = lines.map((line) => (JSON.parse(line) as { id: string }).id);
  assert.deepEqual(printed, created);
  assert.deepEqual(printed, ["r-01", "r-03", "r-04"]);
});
