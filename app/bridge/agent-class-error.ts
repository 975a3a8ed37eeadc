/**
 * The code of an `agents.classes` entry that cannot be used (its module cannot be loaded, its export is no Agent
 * subclass). Apart from agent-classes.ts, which imports the agent runtime, so that the command line can recognise the
 * error without loading it.
 */
export const AGENT_CLASS_ERROR = "BRIDGE_ERR_AGENT_CLASS";
