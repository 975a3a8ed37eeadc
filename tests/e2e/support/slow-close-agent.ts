/**
 * A DeviceAgent whose `onClose` takes `SLOW_CLOSE_MS` and then writes a row: work an agent starts only once its
 * client's socket closed, which at a stop is the end of that socket's close grace. The stop tests read the row back
 * to see that this work finished, and committed, inside shutdown.timeoutMs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { DeviceAgent } from "../../../agents/device/index.ts";
import type { CloseReason, Connection } from "../../../agents/index.ts";

/** How long each `onClose` of a {@link SlowCloseAgent} takes, ms. */
export const SLOW_CLOSE_MS = 900;

export class SlowCloseAgent extends DeviceAgent {
  override async onClose(conn: Connection, reason: CloseReason): Promise<void> {
    await super.onClose(conn, reason);
    await sleep(SLOW_CLOSE_MS);
    this.sql`CREATE TABLE IF NOT EXISTS closes (connection TEXT NOT NULL, reason TEXT NOT NULL)`;
    this.sql`INSERT INTO closes (connection, reason) VALUES (${conn.id}, ${reason})`;
  }
}
