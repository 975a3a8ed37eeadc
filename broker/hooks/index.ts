/** The aedes hooks of the broker, installed in one place. */
import type { Aedes } from "aedes";
import { createAuthenticate, createPreConnect } from "./connect.ts";
import type { HookContext } from "./context.ts";
import { followEvents } from "./events.ts";
import { createAuthorizePublish } from "./publish.ts";
import { authorizeForward, createAuthorizeSubscribe } from "./subscribe.ts";

export type { ConnectFacts, HookContext, StreamFacts } from "./context.ts";

export function installHooks(aedes: Aedes, ctx: HookContext): void {
  aedes.preConnect = createPreConnect(ctx);
  aedes.authenticate = createAuthenticate(ctx);
  aedes.authorizePublish = createAuthorizePublish(ctx);
  aedes.authorizeSubscribe = createAuthorizeSubscribe(ctx);
  aedes.authorizeForward = authorizeForward;
  followEvents(aedes, ctx);
}
