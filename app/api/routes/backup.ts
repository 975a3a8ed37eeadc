/**
 * `POST /api/backup`: a snapshot of the running bridge's data (app/backup/), written under `backup.dir` only: the
 * body may name a new folder there, never a path elsewhere, since the token holder is not necessarily the machine's
 * administrator. One at a time: a second request while one runs is answered 409.
 */
import type { FastifyInstance } from "fastify";
import { BACKUP_ERRORS } from "../../backup/errors.ts";
import { BridgeError } from "../../../errors/index.ts";
import type { OperatorDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { backupAnswer } from "../response-schemas.ts";

/** The API's status for each backup error code. */
const STATUS: Readonly<Record<string, number>> = {
  [BACKUP_ERRORS.IN_PROGRESS]: 409,
  [BACKUP_ERRORS.TARGET]: 400,
  [BACKUP_ERRORS.FAILED]: 500,
};

export function registerBackupRoutes(api: FastifyInstance, deps: OperatorDeps): void {
  const backup = deps.backup;
  if (backup === undefined) return;
  api.post<{ Body: { dir?: string } | undefined }>(
    "/backup",
    {
      schema: {
        summary: "Snapshot every database (registry, runtime, each agent) into a new folder under backup.dir",
        tags: ["operations"],
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            dir: {
              type: "string",
              minLength: 1,
              maxLength: 1024,
              description: "A new folder under backup.dir (relative to it); default: backup-<UTC time>",
            },
          },
        },
      },
      // No body at all is the plain request (a generated name): given to the schema as an empty object.
      preValidation: async (request) => {
        request.body ??= {};
      },
      config: {
        successSchema: backupAnswer,
        errorResponses: {
          400: "dir is not a new folder under backup.dir (BRIDGE_ERR_BACKUP_TARGET)",
          409: "A backup is running already (BRIDGE_ERR_BACKUP_IN_PROGRESS)",
          500: "A copy failed; nothing was left at the target (BRIDGE_ERR_BACKUP_FAILED)",
          503: "The bridge is shutting down (BRIDGE_ERR_RUNTIME_CLOSED)",
        },
      },
    },
    async (request) => {
      try {
        return await backup.run({ dir: request.body?.dir });
      } catch (err) {
        if (!(err instanceof BridgeError)) throw err;
        // A stop that began during the backup is the 503 of a stopping bridge, as for any route.
        const cause = err.cause;
        if (cause instanceof BridgeError && cause.code === "BRIDGE_ERR_RUNTIME_CLOSED") {
          throw new ApiError(503, cause.code, err.message);
        }
        const status = STATUS[err.code];
        if (status === undefined) throw err;
        throw new ApiError(status, err.code, err.message, err.code === BACKUP_ERRORS.TARGET ? "body.dir" : undefined);
      }
    },
  );
}
