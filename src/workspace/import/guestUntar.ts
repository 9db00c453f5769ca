/**
 * The guest side of an import: the agent's own extractor, run as an ordinary
 * command from the agent's binary (`/proc/1/exe` is PID 1's executable in
 * every VM), so that imports need no tar in the environment and never write
 * through a link already in the workspace (guest/agent/untar.c).
 */
export const GUEST_AGENT_BINARY = "/proc/1/exe"

/** The argv that unpacks a tar stream on stdin into `dest` (absolute). */
export const guestUntar = (dest: string): readonly [string, ...Array<string>] => [GUEST_AGENT_BINARY, "untar", dest]
