/**
 * What `GET /readyz/engine` shows a caller without the operator token (a load balancer, a probe, anyone who reaches
 * the HTTP port). The full answer names each replica by URL and quotes network errors, which name internal hosts and
 * addresses (`connect ECONNREFUSED 10.0.3.7:8000`); this one says the same thing coarsely: each replica by its index
 * in `engine.urls`, whether it serves, and the kind of problem, never its text.
 */
import type { EngineHealth, EngineReplicaHealth, HealthProblemReason } from "../../engine-client/index.ts";

export interface PublicReplicaReadiness {
  /** Position of the replica in `engine.urls`, from 0. */
  index: number;
  /** In rotation (`healthy`) or taken out after failures (`cooling`). */
  state: EngineReplicaHealth["state"];
  /** `GET /health` answered 200 in time. */
  healthy: boolean;
  /** Why it did not, when it did not: `timeout`, `status` (an answer other than 200) or `unreachable`. */
  reason?: HealthProblemReason;
}

export interface PublicEngineReadinessBody {
  status: EngineHealth["status"];
  /** Which replicas are not serving, by index, one coarse clause each; absent when all are. */
  message?: string;
  replicas: PublicReplicaReadiness[];
}

/** One clause per kind of problem: nothing in them comes from the network. */
const REASON_CLAUSES: Readonly<Record<HealthProblemReason, string>> = {
  timeout: "GET /health got no answer in time",
  status: "GET /health did not answer 200",
  unreachable: "unreachable",
};

/** The replica as a caller without the token sees it. */
export function publicReplica(replica: EngineReplicaHealth, index: number): PublicReplicaReadiness {
  const view: PublicReplicaReadiness = { index, state: replica.state, healthy: replica.healthy };
  if (!replica.healthy && replica.problem !== undefined) view.reason = replica.problem.reason;
  return view;
}

/** Why the replica at `index` is not serving, coarsely; undefined when it is. */
export function publicProblem(replica: EngineReplicaHealth, index: number): string | undefined {
  const name = `engine.urls[${index}]`;
  if (!replica.healthy) {
    const reason = replica.problem?.reason;
    return `${name}: ${reason === undefined ? REASON_CLAUSES.status : REASON_CLAUSES[reason]}`;
  }
  if (replica.state !== "healthy") return `${name}: out of rotation (${replica.state}) after failed requests`;
  return undefined;
}
