/**
 * `agent-bridge devices add --count N --prefix P [--json]`: provisions N devices in one call, ids `P` plus a number
 * zero-padded to the width of N (`--count 200 --prefix t-` gives t-001 .. t-200), so the ids sort in order. With
 * `--json` it prints one `{"id","secret"}` object per line: exactly what `agent-bridge sim --credentials FILE` reads.
 */
import { DEVICE_ID_RULE, isValidDeviceId } from "../../codecs/index.ts";
import type { CodecName } from "../../codecs/frames.ts";
import type { DeviceRegistry } from "../../broker/registry/index.ts";
import { CliExit, EXIT_FAILURE, EXIT_USAGE } from "./exit.ts";

/** Most devices one call provisions. */
export const MAX_BATCH_COUNT = 100_000;

/** Secrets hashed at once: scrypt runs on libuv's thread pool (4 threads by default). */
const HASH_CONCURRENCY = 4;

/** The ids a batch provisions, or a usage message naming the flag. */
export function batchIds(
  countText: string,
  prefix: string,
): { ok: true; ids: string[] } | { ok: false; message: string } {
  const count = Number(countText);
  if (!/^\d+$/.test(countText.trim()) || !Number.isSafeInteger(count) || count < 1 || count > MAX_BATCH_COUNT) {
    return { ok: false, message: `--count must be an integer from 1 to ${MAX_BATCH_COUNT}` };
  }
  const width = String(count).length;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(width, "0")}`);
  const longest = ids[ids.length - 1] as string;
  if (!isValidDeviceId(longest)) {
    return { ok: false, message: `--prefix must make device ids of ${DEVICE_ID_RULE} (got ${longest})` };
  }
  return { ok: true, ids };
}

/**
 * Provisions every id or none that exists already (checked first, so a rerun cannot half-succeed on a clash), and
 * prints each secret as soon as it is stored, in id order: an interrupted batch still shows the secrets it issued.
 */
export async function addBatch(
  registry: DeviceRegistry,
  ids: readonly string[],
  options: { codec?: CodecName; agentClass?: string; json: boolean },
  out: (line: string) => void,
): Promise<void> {
  const taken = ids.filter((id) => registry.get(id) !== undefined);
  if (taken.length > 0) {
    const sample = taken.slice(0, 5).join(", ");
    process.stderr.write(
      `error: ${taken.length} of these ids exist already (${sample}${taken.length > 5 ? ", ..." : ""}); nothing added\n`,
    );
    throw new CliExit(EXIT_FAILURE);
  }
  if (!options.json) out(["ID", "SECRET"].join("\t"));
  for (let i = 0; i < ids.length; i += HASH_CONCURRENCY) {
    const chunk = ids.slice(i, i + HASH_CONCURRENCY);
    const results = await Promise.all(
      chunk.map((id) => registry.add(id, { codec: options.codec, agentClass: options.agentClass })),
    );
    // Every device of the chunk that was created is printed before a failure ends the batch (an id another process
    // took since the check above): its secret is stored only as a hash, so unprinted it could never log in.
    let failed: CliExit | undefined;
    for (const [j, result] of results.entries()) {
      if (result.status !== "created") {
        process.stderr.write(`error: ${chunk[j]}: ${result.status === "invalid" ? result.message : "exists"}\n`);
        failed ??= new CliExit(result.status === "invalid" ? EXIT_USAGE : EXIT_FAILURE);
        continue;
      }
      const { id } = result.device;
      out(options.json ? JSON.stringify({ id, secret: result.secret }) : `${id}\t${result.secret}`);
    }
    if (failed !== undefined) throw failed;
  }
  if (!options.json) {
    process.stderr.write(
      `${ids.length} devices added. The secrets are shown once and stored only as hashes: keep them now.\n`,
    );
  }
}
