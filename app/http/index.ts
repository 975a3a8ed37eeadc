/** The operator HTTP server and its upgrade dispatch. */
export { createHttpServer, type HttpServer, type HttpServerOptions, type Readiness } from "./server.ts";
export { createUpgradeDispatcher, type UpgradeHandler, type UpgradeRoute } from "./upgrade.ts";
