/** The operator HTTP server and its upgrade dispatch. */
export {
  createHttpServer,
  HTTP_SERVER_DEFAULTS,
  type HttpServer,
  type HttpServerOptions,
  type Readiness,
} from "./server.ts";
export {
  type EngineReadinessBody,
  type EngineReadinessOptions,
  engineReadinessCheck,
  type ReadinessCheck,
  type ReadinessCheckResult,
} from "./engine-readiness.ts";
export type { PublicEngineReadinessBody, PublicReplicaReadiness } from "./engine-readiness-public.ts";
export { type ReadinessAccess, readinessAccess } from "./readiness-access.ts";
export { createUpgradeDispatcher, type UpgradeHandler, type UpgradeRoute } from "./upgrade.ts";
