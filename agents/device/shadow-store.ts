/**
 * The device shadow: a reported and a desired document, each with its own monotonically increasing version, and the
 * delta (desired minus reported) last sent to the device, so a delta goes out only when it actually changes.
 */
import type { ValueMap } from "../../codecs/frames.ts";
import type { SqlTag } from "./sql.ts";
import { checkFieldDepth, checkFieldEncodable } from "./value-depth.ts";
import { decodeValue, deepEqual, encodeValue, isValueMap, mergePatch, shadowDelta } from "./values.ts";

/** One shadow document with its version. */
export interface ShadowDoc {
  version: number;
  state: ValueMap;
}

/** What `getShadow()` returns. */
export interface Shadow {
  reported: ShadowDoc;
  desired: ShadowDoc;
  delta: ValueMap;
}

/**
 * Outcome of a reported patch: applied, or refused because its base version is not the current one: `stale` when
 * it is behind (the device missed a change, or resent a patch already applied), `ahead` when it is a version this
 * shadow never issued (the device kept it across a destroyed and recreated agent, or its firmware miscounts).
 * `version` is the current reported version either way.
 */
export type ReportResult =
  | { status: "ok"; version: number; delta: ValueMap; deltaChanged: boolean }
  | { status: "stale"; version: number }
  | { status: "ahead"; version: number };

/** Outcome of a desired patch: applied, or refused because `expectedVersion` is not the current one. */
export type DesireResult =
  | { status: "ok"; version: number; delta: ValueMap; deltaChanged: boolean }
  | { status: "conflict"; version: number };

type DocName = "reported" | "desired" | "sent_delta";

/** A stored shadow document, decoded: no row (never written) or a row that does not hold a map reads as empty. */
function decodeDoc(row: { version: number; state: Uint8Array } | undefined): ShadowDoc {
  if (row === undefined) return { version: 0, state: {} };
  const state = decodeValue(row.state);
  return { version: Number(row.version), state: isValueMap(state) ? state : {} };
}

/** Reads and writes the shadow table. */
export class ShadowStore {
  /** See `revision`. */
  #revision = 0;

  constructor(
    private readonly sql: SqlTag,
    private readonly now: () => number,
  ) {}

  private read(doc: DocName): ShadowDoc {
    const rows = this.sql<{ version: number; state: Uint8Array }>`SELECT version, state FROM shadow WHERE doc = ${doc}`;
    return decodeDoc(rows[0]);
  }

  private write(doc: DocName, version: number, state: ValueMap): void {
    this
      .sql`INSERT INTO shadow (doc, version, state, updated_at) VALUES (${doc}, ${version}, ${encodeValue(state)}, ${this.now()})
      ON CONFLICT (doc) DO UPDATE SET version = excluded.version, state = excluded.state, updated_at = excluded.updated_at`;
    if (doc !== "sent_delta") this.#revision++;
  }

  /**
   * A number that moves whenever what `get()` returns may have changed: at every write of the reported or desired
   * document, and at `invalidate`. A value derived from `get()` (the prompt's rendering of the shadow) stays valid
   * while this is unchanged, so a question reads and decodes the shadow only after it changed. Not the documents'
   * versions: a rolled-back write leaves its version to be issued again with other content.
   */
  get revision(): number {
    return this.#revision;
  }

  /** A rolled-back event may have undone a write: whatever was derived from the shadow is derived again. */
  invalidate(): void {
    this.#revision++;
  }

  /** The whole shadow with its current delta, in one SELECT (a question reads it only after `revision` moved). */
  get(): Shadow {
    const rows = this.sql<{ doc: DocName; version: number; state: Uint8Array }>`SELECT doc, version, state FROM shadow
      WHERE doc IN ('reported', 'desired')`;
    const reported = decodeDoc(rows.find((r) => r.doc === "reported"));
    const desired = decodeDoc(rows.find((r) => r.doc === "desired"));
    return { reported, desired, delta: shadowDelta(desired.state, reported.state) };
  }

  /** Applies a reported patch based on version `baseVersion` (the device's view of the reported version). */
  report(baseVersion: number, patch: ValueMap): ReportResult {
    const reported = this.read("reported");
    if (baseVersion < reported.version) return { status: "stale", version: reported.version };
    if (baseVersion > reported.version) return { status: "ahead", version: reported.version };
    const next = mergePatch(reported.state, patch);
    const version = reported.version + 1;
    this.write("reported", version, next);
    return { status: "ok", version, ...this.deltaChange(this.read("desired").state, next) };
  }

  /**
   * Applies a desired patch; with `expectedVersion` only when it is the current desired version. Throws
   * BRIDGE_ERR_INVALID_ARGUMENT (field `patch`) for a patch nested deeper than a device frame allows or holding what no
   * codec can write: it comes from an operator or a tool call, not from a decoder that already checked it.
   */
  desire(patch: ValueMap, expectedVersion?: number): DesireResult {
    checkFieldDepth(patch, "patch");
    checkFieldEncodable(patch, "patch");
    const desired = this.read("desired");
    if (expectedVersion !== undefined && expectedVersion !== desired.version) {
      return { status: "conflict", version: desired.version };
    }
    const next = mergePatch(desired.state, patch);
    const version = desired.version + 1;
    this.write("desired", version, next);
    return { status: "ok", version, ...this.deltaChange(next, this.read("reported").state) };
  }

  /** Records `delta` as sent (a full resync counts as sending the current delta). */
  markDeltaSent(delta: ValueMap): void {
    this.write("sent_delta", 0, delta);
  }

  private deltaChange(desired: ValueMap, reported: ValueMap): { delta: ValueMap; deltaChanged: boolean } {
    const delta = shadowDelta(desired, reported);
    return { delta, deltaChanged: !deepEqual(delta, this.read("sent_delta").state) };
  }
}
