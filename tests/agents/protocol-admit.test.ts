import assert from "node:assert/strict";
import path from "node:path";
import { after, describe, test } from "node:test";
import { ADMIT_PROTOCOL } from "../../agents/agent.ts";
import { Agent, type Connection, type ProtocolMessage } from "../../agents/index.ts";
import { RecordingTransport, tempDir, testRuntime } from "./helpers.ts";

/** Whether the hook below fails (as a storage read in it might). */
let failVetting = false;

/** An agent whose protocol-frame hook fails for state frames while failVetting is set. */
class FaultyVetter extends Agent<{ n: number }> {
  static override callable = ["bump"];
  bump(): void {
    this.setState({ n: (this.state?.n ?? 0) + 1 });
  }
  count(): number {
    return this.state?.n ?? 0;
  }
  override [ADMIT_PROTOCOL](_conn: Connection, message: ProtocolMessage): boolean {
    if (failVetting && message.type === "state") throw new Error("cannot vet");
    return true;
  }
}

describe("protocol frames the agent is asked to admit", () => {
  const t = tempDir();
  after(() => t.remove());

  test("a live agent whose hook throws fails its event: the state change rolls back and nothing is sent", async () => {
    const rt = testRuntime(path.join(t.dir, "live"), FaultyVetter, 3);
    const tr = new RecordingTransport();
    try {
      assert.equal((await rt.open("a", { id: "c", kind: "ws", codec: "json", transport: tr })).status, "committed");
      const sentBefore = tr.protocol.length;
      failVetting = true;
      const r = await rt.call("a", "bump", []);
      assert.equal(r.ok, false, "the event failed");
      assert.deepEqual(await rt.call("a", "count", []), { ok: true, value: 0 }, "the state change rolled back");
      assert.equal(tr.protocol.length, sentBefore, "no state frame left");
    } finally {
      failVetting = false;
      await rt.shutdown();
    }
  });
});
